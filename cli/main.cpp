// decloud: the command-line client. Signs in with a local wallet key and acts as that user.

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>

#include "decloud/cli/commands.hpp"

namespace {

using decloud::common::Status;

// A password from a file or standard input, never from the command line (argv is public).
std::string ReadSecretLine(const std::string& file) {
    std::string line;
    if (file.empty() || file == "-") {
        if (::isatty(STDIN_FILENO)) std::cerr << "VM password: " << std::flush;
        std::getline(std::cin, line);
    } else {
        std::ifstream in(file);
        if (!in) throw CLI::ValidationError("--password-file", "cannot read " + file);
        std::getline(in, line);
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "DeCloud command-line client: sign in with your wallet key and manage your "
        "account, SSH keys, VMs and nodes."};
    app.require_subcommand(1);
    app.set_version_flag("--version", DECLOUD_VERSION);

    std::string api_url;
    if (const char* env = std::getenv("DECLOUD_API"); env) api_url = env;
    bool json = false;
    app.add_option("--api", api_url,
                   "orchestrator URL (default: the signed-in session's, else "
                   "http://127.0.0.1:8080; env DECLOUD_API)");
    app.add_flag("--json", json, "print the API's JSON");
    std::string ca_file;
    if (const char* env = std::getenv("DECLOUD_CA_FILE"); env) ca_file = env;
    app.add_option("--ca-file", ca_file,
                   "PEM certificates to trust for an https API instead of the system's (env "
                   "DECLOUD_CA_FILE)");

    std::string key_file;
    auto* login = app.add_subcommand("login", "sign in with Ethereum (EIP-4361) using a key file");
    login
        ->add_option("--key-file", key_file,
                     "file holding the wallet's secp256k1 private key (hex)")
        ->required();
    auto* logout = app.add_subcommand("logout", "end the session on the server and forget it");
    auto* whoami = app.add_subcommand("whoami", "show the signed-in wallet and its keys");

    auto* ssh = app.add_subcommand("ssh-key", "SSH public keys injected into your VMs");
    ssh->require_subcommand(1);
    std::string ssh_key, ssh_id;
    std::optional<std::string> ssh_name;
    auto* ssh_add = ssh->add_subcommand("add", "register a public key (a .pub file or the line)");
    ssh_add->add_option("key", ssh_key, "path to a .pub file, or the key itself")->required();
    ssh_add->add_option("--name", ssh_name, "a name for the key (default: its comment)");
    auto* ssh_list = ssh->add_subcommand("list", "list your SSH keys");
    auto* ssh_remove = ssh->add_subcommand("remove", "remove an SSH key");
    ssh_remove->add_option("id", ssh_id, "the key's id")->required();

    auto* enc = app.add_subcommand("encryption-key", "the key VM passwords are encrypted to");
    enc->require_subcommand(1);
    std::string enc_public;
    auto* enc_derive = enc->add_subcommand(
        "derive", "register the key derived from a wallet signature (as the console does)");
    enc_derive->add_option("--key-file", key_file, "the wallet's private key file")->required();
    auto* enc_set = enc->add_subcommand("set", "register a secp256k1 public key (hex)");
    enc_set->add_option("public-key", enc_public, "0x04... or 0x02/0x03...")->required();
    auto* enc_clear =
        enc->add_subcommand("clear", "go back to the wallet's own key (recovered at sign-in)");

    auto* vm = app.add_subcommand("vm", "virtual machines");
    vm->require_subcommand(1);
    auto* password = vm->add_subcommand("password", "VM passwords, encrypted end to end");
    password->require_subcommand(1);
    std::string password_file, payload;
    bool derived = false;
    auto* encrypt = password->add_subcommand(
        "encrypt", "encrypt a password (read from stdin) to your encryption key; prints hex");
    encrypt->add_option("--password-file", password_file, "read the password from this file");
    decloud::cli::VmCreateOptions create;
    auto* vm_create = vm->add_subcommand("create", "create a VM (the orchestrator picks a node)");
    vm_create->add_option("name", create.name, "a name (any text)")->required();
    vm_create->add_option("--cores", create.cpu_cores, "vCPUs")->capture_default_str();
    vm_create->add_option("--memory", create.memory_mib, "memory in MiB")->capture_default_str();
    vm_create->add_option("--disk", create.disk_gib, "disk in GiB")->capture_default_str();
    vm_create->add_option("--image", create.image, "base image")->capture_default_str();
    vm_create->add_option("--tier", create.tier, "guaranteed, standard, balanced or burstable")
        ->capture_default_str();
    vm_create->add_option("--node", create.node_id, "deploy to this node only");
    vm_create->add_option("--region", create.region, "only nodes in this region");
    vm_create->add_option("--tag", create.tags, "the node must carry this tag (repeatable)");
    vm_create->add_option("--ssh-key", create.ssh_key_ids,
                          "id of one of your SSH keys (repeatable)");
    vm_create->add_option("--user-data", create.user_data_file, "your own cloud-init file");
    vm_create->add_option("--template", create.template_id,
                          "create from a template (see GET /api/templates)");
    vm_create->add_option("--param", create.template_params,
                          "a template parameter, name=value (repeatable)");
    vm_create->add_option("--idempotency-key", create.idempotency_key,
                          "retry-safe key (default: a fresh one)");
    vm_create->add_flag("--quote", create.quote_only,
                        "only show where it would go and what it would cost");
    auto* vm_list = vm->add_subcommand("list", "list your VMs");
    std::string vm_id;
    auto* vm_show = vm->add_subcommand("show", "show one VM (state, price, addresses)");
    vm_show->add_option("id", vm_id, "the VM's id")->required();
    auto* vm_events = vm->add_subcommand("events", "a VM's state history");
    vm_events->add_option("id", vm_id, "the VM's id")->required();
    std::map<std::string, CLI::App*> vm_actions;
    for (const char* action : {"start", "stop", "reboot", "delete"}) {
        auto* sub = vm->add_subcommand(action, std::string(action) + " a VM");
        sub->add_option("id", vm_id, "the VM's id")->required();
        vm_actions[action] = sub;
    }
    auto* decrypt = password->add_subcommand("decrypt", "decrypt an encrypted VM password");
    decrypt->add_option("payload", payload, "the hex payload")->required();
    decrypt->add_option("--key-file", key_file, "the wallet's private key file")->required();
    decrypt->add_flag("--derived", derived, "use the key derived from the wallet (see derive)");

    auto* key = app.add_subcommand("key", "local wallet key files");
    key->require_subcommand(1);
    auto* key_new = key->add_subcommand("new", "create a new wallet key file (mode 0600)");
    key_new->add_option("--out", key_file, "where to write it; never overwritten")->required();
    auto* key_address = key->add_subcommand("address", "print a key file's wallet address");
    key_address->add_option("--key-file", key_file, "the private key file")->required();

    auto* node = app.add_subcommand("node", "nodes you operate");
    node->require_subcommand(1);
    std::optional<std::string> node_status;
    std::string node_id;
    auto* node_list = node->add_subcommand("list", "list your nodes");
    node_list->add_option("--status", node_status, "online or offline");
    auto* node_show = node->add_subcommand("show", "show one node");
    node_show->add_option("id", node_id, "the node's id")->required();

    CLI11_PARSE(app, argc, argv);

    decloud::cli::CommandContext ctx{std::cout,
                                     decloud::cli::SessionStore(decloud::cli::DefaultConfigDir()),
                                     api_url, json, ca_file};
    Status status;
    try {
        if (*login)
            status = Login(ctx, key_file);
        else if (*logout)
            status = Logout(ctx);
        else if (*whoami)
            status = WhoAmI(ctx);
        else if (*ssh_add)
            status = SshKeyAdd(ctx, ssh_key, ssh_name);
        else if (*ssh_list)
            status = SshKeyList(ctx);
        else if (*ssh_remove)
            status = SshKeyRemove(ctx, ssh_id);
        else if (*enc_derive)
            status = EncryptionKeyDerive(ctx, key_file);
        else if (*enc_set)
            status = EncryptionKeySet(ctx, enc_public);
        else if (*enc_clear)
            status = EncryptionKeyClear(ctx);
        else if (*encrypt)
            status = PasswordEncrypt(ctx, ReadSecretLine(password_file));
        else if (*decrypt)
            status = PasswordDecrypt(ctx, key_file, payload, derived);
        else if (*key_new)
            status = KeyNew(ctx, key_file);
        else if (*key_address)
            status = KeyAddress(ctx, key_file);
        else if (*vm_create)
            status = VmCreate(ctx, create);
        else if (*vm_list)
            status = VmList(ctx);
        else if (*vm_show)
            status = VmShow(ctx, vm_id);
        else if (*vm_events)
            status = VmEvents(ctx, vm_id);
        else if (auto acted = std::find_if(vm_actions.begin(), vm_actions.end(),
                                           [](const auto& a) { return a.second->parsed(); });
                 acted != vm_actions.end())
            status = VmAct(ctx, vm_id, acted->first);
        else if (*node_list)
            status = NodeList(ctx, node_status);
        else if (*node_show)
            status = NodeShow(ctx, node_id);
    } catch (const CLI::Error& e) {
        return app.exit(e);
    }
    if (!status) {
        std::cerr << "decloud: " << status.error().message << "\n";
        switch (status.error().code) {
            case decloud::common::ErrorCode::kInvalidArgument:
                return 2;
            case decloud::common::ErrorCode::kUnauthenticated:
            case decloud::common::ErrorCode::kPermissionDenied:
                return 3;
            case decloud::common::ErrorCode::kNotFound:
                return 4;
            default:
                return 1;
        }
    }
    return 0;
}
