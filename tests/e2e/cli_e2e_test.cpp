// The `decloud` CLI as a user runs it, against a real orchestrator and PostgreSQL: sign-in with a
// key file, profile, SSH keys, encryption keys and VM passwords end to end, session refresh and
// logout.

#include <sys/stat.h>

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "decloud/crypto/crypto.hpp"
#include "decloud/crypto/ethereum.hpp"
#include "decloud/testing/orchestrator.hpp"
#include "decloud/testing/process.hpp"
#include "decloud/testing/sign_in.hpp"
#include "decloud/testing/temp_pg_cluster.hpp"

namespace decloud {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

class CliTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new testing::TempPgCluster();
        dir_ = new testing::TempDir("decloud-cli");
        auto started = testing::StartTestOrchestrator(
            DECLOUD_ORCHESTRATOR_BIN, pg_->CreateDatabase("cli"), dir_->path(),
            {std::string("templates.directory=") + DECLOUD_SOURCE_DIR + "/templates",
             "nodes.heartbeat_flush_interval=50ms"});
        port_ = started.port;
        orchestrator_ = started.process.release();
        ASSERT_TRUE(started.ready) << orchestrator_->Log();
    }

    static void TearDownTestSuite() {
        if (orchestrator_) {
            EXPECT_EQ(orchestrator_->Terminate(), 0) << orchestrator_->Log();
        }
        delete orchestrator_;
        delete dir_;
        delete pg_;
    }

    void SetUp() override {
        home_ = std::make_unique<testing::TempDir>("decloud-cli-home");
        key_ = crypto::EthereumKey::Generate();
        key_file_ = WriteKeyFile(key_, 0600);
    }

    std::string WriteKeyFile(const crypto::EthereumKey& key, mode_t mode) {
        const auto path = home_->path() + "/wallet-" + key.Address() + ".key";
        std::ofstream(path) << "0x" << crypto::HexEncode(key.Secret()) << "\n";
        ::chmod(path.c_str(), mode);
        return path;
    }

    std::string Api() const { return "http://127.0.0.1:" + std::to_string(port_); }

    testing::CommandResult Cli(std::vector<std::string> args, const std::string& input = {}) {
        return testing::RunCommand(
            DECLOUD_CLI_BIN, std::move(args),
            {{"DECLOUD_CONFIG_DIR", home_->path() + "/config"}, {"DECLOUD_API", Api()}}, input,
            60s);
    }

    std::string SessionPath() const { return home_->path() + "/config/session.json"; }

    static testing::TempPgCluster* pg_;
    static testing::TempDir* dir_;
    static testing::ChildProcess* orchestrator_;
    static std::uint16_t port_;
    std::unique_ptr<testing::TempDir> home_;
    crypto::EthereumKey key_ = crypto::EthereumKey::Generate();
    std::string key_file_;
};

testing::TempPgCluster* CliTest::pg_ = nullptr;
testing::TempDir* CliTest::dir_ = nullptr;
testing::ChildProcess* CliTest::orchestrator_ = nullptr;
std::uint16_t CliTest::port_ = 0;

TEST_F(CliTest, LoginWhoamiAndLogout) {
    auto whoami = Cli({"whoami"});
    EXPECT_EQ(whoami.exit_code, 4) << whoami.err;
    EXPECT_NE(whoami.err.find("decloud login"), std::string::npos) << whoami.err;

    auto login = Cli({"login", "--key-file", key_file_});
    ASSERT_EQ(login.exit_code, 0) << login.err;
    EXPECT_NE(login.out.find(key_.Address()), std::string::npos) << login.out;
    struct stat st {};
    ASSERT_EQ(::stat(SessionPath().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "tokens are credentials";

    whoami = Cli({"--json", "whoami"});
    ASSERT_EQ(whoami.exit_code, 0) << whoami.err;
    const auto me = json::parse(whoami.out);
    EXPECT_EQ(me["walletAddress"], key_.Address());
    EXPECT_EQ(me["walletPublicKey"], "0x" + crypto::HexEncode(key_.PublicKey()));
    EXPECT_EQ(me["encryptionKeySource"], "wallet");

    auto logout = Cli({"logout"});
    ASSERT_EQ(logout.exit_code, 0) << logout.err;
    EXPECT_FALSE(std::ifstream(SessionPath()).good());
    EXPECT_EQ(Cli({"whoami"}).exit_code, 4);
}

TEST_F(CliTest, AnExpiredOrDamagedAccessTokenIsRefreshedOnce) {
    ASSERT_EQ(Cli({"login", "--key-file", key_file_}).exit_code, 0);
    std::ifstream in(SessionPath());
    auto session = json::parse(in);
    session["token"] = "not-a-valid-token";
    std::ofstream(SessionPath()) << session.dump();

    auto whoami = Cli({"whoami"});
    ASSERT_EQ(whoami.exit_code, 0) << whoami.err;
    std::ifstream again(SessionPath());
    EXPECT_NE(json::parse(again)["token"], "not-a-valid-token") << "the new token is stored";

    session["token"] = "not-a-valid-token";
    session["refreshToken"] = "not-a-valid-refresh-token";
    std::ofstream(SessionPath()) << session.dump();
    whoami = Cli({"whoami"});
    EXPECT_EQ(whoami.exit_code, 3);
    EXPECT_NE(whoami.err.find("login"), std::string::npos) << whoami.err;
}

TEST_F(CliTest, RefusesUnsafeKeyFilesAndForeignDomains) {
    const auto loose = WriteKeyFile(crypto::EthereumKey::Generate(), 0644);
    auto r = Cli({"login", "--key-file", loose});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("chmod 600"), std::string::npos) << r.err;

    const auto garbage = home_->path() + "/garbage.key";
    std::ofstream(garbage) << "not a key\n";
    ::chmod(garbage.c_str(), 0600);
    EXPECT_EQ(Cli({"login", "--key-file", garbage}).exit_code, 2);

    // The orchestrator names 127.0.0.1:<port>; reached as localhost it is someone else's
    // sign-in request as far as the CLI can tell, so it must not sign.
    r = Cli(
        {"--api", "http://localhost:" + std::to_string(port_), "login", "--key-file", key_file_});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("refusing to sign"), std::string::npos) << r.err;
    EXPECT_FALSE(std::ifstream(SessionPath()).good());
}

TEST_F(CliTest, SshKeysAddListRemove) {
    ASSERT_EQ(Cli({"login", "--key-file", key_file_}).exit_code, 0);
    const auto key_path = home_->path() + "/id_ed25519";
    auto gen = testing::RunCommand("/usr/bin/ssh-keygen", {"-q", "-t", "ed25519", "-N", "", "-C",
                                                           "alice@laptop", "-f", key_path});
    ASSERT_EQ(gen.exit_code, 0) << gen.err;
    auto fingerprint = testing::RunCommand("/usr/bin/ssh-keygen", {"-l", "-f", key_path + ".pub"});
    ASSERT_EQ(fingerprint.exit_code, 0);
    const auto expected_fp = fingerprint.out.substr(fingerprint.out.find("SHA256:"), 50);

    auto added = Cli({"--json", "ssh-key", "add", key_path + ".pub", "--name", "laptop"});
    ASSERT_EQ(added.exit_code, 0) << added.err;
    const auto key = json::parse(added.out);
    EXPECT_EQ(key["name"], "laptop");
    EXPECT_EQ(key["type"], "ssh-ed25519");
    EXPECT_EQ(key["fingerprint"], expected_fp);

    auto duplicate = Cli({"ssh-key", "add", key_path + ".pub", "--name", "again"});
    EXPECT_EQ(duplicate.exit_code, 1) << "409: the same key twice";
    EXPECT_NE(duplicate.err.find("409"), std::string::npos) << duplicate.err;
    EXPECT_EQ(Cli({"ssh-key", "add", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"}).exit_code, 2);

    auto listed = Cli({"ssh-key", "list"});
    ASSERT_EQ(listed.exit_code, 0);
    EXPECT_NE(listed.out.find(expected_fp), std::string::npos) << listed.out;

    ASSERT_EQ(Cli({"ssh-key", "remove", key["id"]}).exit_code, 0);
    EXPECT_EQ(Cli({"ssh-key", "remove", key["id"]}).exit_code, 4);
    listed = Cli({"--json", "ssh-key", "list"});
    EXPECT_TRUE(json::parse(listed.out)["sshKeys"].empty());
}

TEST_F(CliTest, VmPasswordsRoundTripWithTheWalletKeyAndWithADerivedKey) {
    ASSERT_EQ(Cli({"login", "--key-file", key_file_}).exit_code, 0);
    auto sealed = Cli({"vm", "password", "encrypt"}, "correct horse battery staple\n");
    ASSERT_EQ(sealed.exit_code, 0) << sealed.err;
    std::string payload = sealed.out.substr(0, sealed.out.find('\n'));
    EXPECT_EQ(payload.find("correct"), std::string::npos);
    auto opened = Cli({"vm", "password", "decrypt", payload, "--key-file", key_file_});
    ASSERT_EQ(opened.exit_code, 0) << opened.err;
    EXPECT_EQ(opened.out, "correct horse battery staple\n");

    // Another wallet's key cannot open it.
    const auto other = WriteKeyFile(crypto::EthereumKey::Generate(), 0600);
    EXPECT_EQ(Cli({"vm", "password", "decrypt", payload, "--key-file", other}).exit_code, 3);

    auto derive = Cli({"--json", "encryption-key", "derive", "--key-file", key_file_});
    ASSERT_EQ(derive.exit_code, 0) << derive.err;
    const auto me = json::parse(derive.out);
    EXPECT_EQ(me["encryptionKeySource"], "registered");
    EXPECT_EQ(me["encryptionPublicKey"],
              "0x" + crypto::HexEncode(crypto::DeriveEncryptionKey(key_).PublicKey()));

    sealed = Cli({"vm", "password", "encrypt"}, "hunter2\n");
    ASSERT_EQ(sealed.exit_code, 0) << sealed.err;
    payload = sealed.out.substr(0, sealed.out.find('\n'));
    auto wrong = Cli({"vm", "password", "decrypt", payload, "--key-file", key_file_});
    EXPECT_EQ(wrong.exit_code, 3);
    EXPECT_NE(wrong.err.find("--derived"), std::string::npos) << wrong.err;
    opened = Cli({"vm", "password", "decrypt", payload, "--key-file", key_file_, "--derived"});
    ASSERT_EQ(opened.exit_code, 0) << opened.err;
    EXPECT_EQ(opened.out, "hunter2\n");

    auto cleared = Cli({"--json", "encryption-key", "clear"});
    ASSERT_EQ(cleared.exit_code, 0) << cleared.err;
    EXPECT_EQ(json::parse(cleared.out)["encryptionKeySource"], "wallet");
    EXPECT_EQ(Cli({"encryption-key", "set", "0x04deadbeef"}).exit_code, 2);
}

TEST_F(CliTest, KeyNewWritesAPrivateFileAndNeverOverwrites) {
    const auto path = home_->path() + "/new.key";
    auto created = Cli({"key", "new", "--out", path});
    ASSERT_EQ(created.exit_code, 0) << created.err;
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    auto address = Cli({"key", "address", "--key-file", path});
    ASSERT_EQ(address.exit_code, 0);
    EXPECT_EQ(address.out, created.out);
    EXPECT_EQ(Cli({"key", "new", "--out", path}).exit_code, 1);
    EXPECT_EQ(Cli({"key", "address", "--key-file", path}).out, created.out) << "unchanged";
    ASSERT_EQ(Cli({"login", "--key-file", path}).exit_code, 0);
    auto me = json::parse(Cli({"--json", "whoami"}).out);
    EXPECT_EQ(me["walletAddress"].get<std::string>() + "\n", created.out);
}

TEST_F(CliTest, NodeListShowsOnlyTheOperatorsNodes) {
    ASSERT_EQ(Cli({"login", "--key-file", key_file_}).exit_code, 0);
    auto nodes = Cli({"node", "list"});
    ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
    EXPECT_NE(nodes.out.find("No nodes"), std::string::npos) << nodes.out;
    EXPECT_EQ(Cli({"node", "show", "no-such-node"}).exit_code, 4);
    EXPECT_EQ(Cli({"node", "list", "--status", "sideways"}).exit_code, 2);
}

TEST_F(CliTest, VmsQuoteCreateListShowAndDeleteIncludingATemplate) {
    ASSERT_EQ(Cli({"login", "--key-file", key_file_}).exit_code, 0);
    auto node = testing::RegisterNode(port_, crypto::Ed25519KeyPair::Generate(), key_.Address());
    ASSERT_TRUE(node);
    const auto beat = testing::HttpRequest(
        port_, "POST", "/api/nodes/" + node->id + "/heartbeat",
        R"({"usage": {"cpuPercent": 1, "memoryUsedBytes": 1, "storageUsedBytes": 1, "runningVms": 0}})",
        {{"Authorization", "Bearer " + node->token}});
    ASSERT_TRUE(beat && beat->status == 200);
    const std::vector<std::string> size = {"--cores", "1", "--memory", "512",
                                           "--disk",  "1", "--node",   node->id};
    auto with = [&](std::vector<std::string> head) {
        head.insert(head.end(), size.begin(), size.end());
        return head;
    };

    testing::CommandResult quote;
    ASSERT_TRUE(testing::WaitUntil(
        [&] {
            quote = Cli(with({"vm", "create", "web", "--quote"}));
            return quote.exit_code == 0 && quote.out.find(node->id) != std::string::npos;
        },
        10s))
        << quote.out << quote.err;
    EXPECT_NE(quote.out.find("USDC/h"), std::string::npos) << quote.out;

    auto created = Cli(with({"--json", "vm", "create", "web <1>"}));
    ASSERT_EQ(created.exit_code, 0) << created.err;
    const auto vm = json::parse(created.out);
    const std::string id = vm["id"];
    EXPECT_EQ(vm["state"], "provisioning");
    EXPECT_EQ(vm["name"], "web <1>");

    auto list = Cli({"vm", "list"});
    ASSERT_EQ(list.exit_code, 0) << list.err;
    EXPECT_NE(list.out.find(id), std::string::npos) << list.out;
    auto show = Cli({"vm", "show", id});
    EXPECT_NE(show.out.find("provisioning"), std::string::npos) << show.out;

    // A template with typed parameters (the port is an integer); a bad value is refused with the
    // parameter's name, never echoing the value.
    const std::string key = std::string(42, 'k') + "A=";
    auto relay = Cli({"--json",     "vm",
                      "create",     "relay",
                      "--template", "relay-wireguard",
                      "--param",    "listen_port=51821",
                      "--param",    "private_key=" + key,
                      "--cores",    "1",
                      "--memory",   "512",
                      "--disk",     "4",
                      "--tier",     "burstable",
                      "--node",     node->id});
    ASSERT_EQ(relay.exit_code, 0) << relay.err;
    const auto relay_vm = json::parse(relay.out);
    EXPECT_EQ(relay_vm["template"], "relay-wireguard");
    EXPECT_EQ(relay_vm["templateParams"]["listen_port"], 51821);
    EXPECT_FALSE(relay_vm["templateParams"].contains("private_key")) << "secret";
    auto not_a_port = Cli({"vm", "create", "relay2", "--template", "relay-wireguard", "--param",
                           "listen_port=http", "--param", "private_key=" + key});
    EXPECT_EQ(not_a_port.exit_code, 2) << not_a_port.out;
    EXPECT_NE(not_a_port.err.find("listen_port"), std::string::npos) << not_a_port.err;
    auto weak = Cli({"vm", "create", "relay3", "--template", "relay-wireguard", "--param",
                     "private_key=sekrit", "--cores", "1", "--memory", "512", "--disk", "4",
                     "--node", node->id});
    EXPECT_EQ(weak.exit_code, 2) << weak.out;
    EXPECT_NE(weak.err.find("private_key"), std::string::npos) << weak.err;
    EXPECT_EQ(weak.err.find("sekrit"), std::string::npos) << "the value is never echoed";

    auto del = Cli({"vm", "delete", id});
    ASSERT_EQ(del.exit_code, 0) << del.err;
    EXPECT_NE(del.out.find("deleting"), std::string::npos) << del.out;
    auto events = Cli({"vm", "events", id});
    EXPECT_NE(events.out.find("provisioning -> deleting"), std::string::npos) << events.out;
    auto again = Cli({"vm", "start", id});
    EXPECT_EQ(again.exit_code, 1) << again.out;  // 409: a deleting VM cannot start
    EXPECT_NE(again.err.find("deleting"), std::string::npos) << again.err;
    EXPECT_EQ(Cli({"vm", "show", "00000000-0000-4000-8000-000000000000"}).exit_code, 4);
}

}  // namespace
}  // namespace decloud
