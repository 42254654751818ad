// NftPortForwarder against the kernel's nftables in a network namespace of its own, with the
// `nft` command line (and `nft monitor` for transactions) as the judge.
#include "agent/adapters/nftables/nft_port_forwarder.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "decloud/testing/netns.hpp"
#include "decloud/testing/process.hpp"

namespace decloud::agent::adapters {
namespace {

using namespace std::chrono_literals;
using domain::relay::PortMapping;
using domain::relay::Protocol;
using testing::NetNamespace;

#ifdef NDEBUG
constexpr const char* kBuild = "optimised build";
#else
constexpr const char* kBuild = "debug build";
#endif

constexpr const char* kIfA = "dcr00000000000a";
constexpr const char* kIfB = "dcr00000000000b";

PortMapping Tcp(std::uint16_t public_port, std::string address, std::uint16_t vm_port) {
    return {public_port, Protocol::kTcp, std::move(address), vm_port};
}
PortMapping Udp(std::uint16_t public_port, std::string address, std::uint16_t vm_port) {
    return {public_port, Protocol::kUdp, std::move(address), vm_port};
}

// n mappings on public ports 20000.. to addresses spread over 10.99.0.0/16.
std::vector<PortMapping> Many(int n) {
    std::vector<PortMapping> out;
    for (int i = 0; i < n; ++i) {
        out.push_back(Tcp(static_cast<std::uint16_t>(20000 + i),
                          "10.99." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1),
                          static_cast<std::uint16_t>(80 + i % 7)));
    }
    return out;
}

std::string Key(const PortMapping& m, const std::string& owner) {
    return std::string(ToString(m.protocol)) + " " + std::to_string(m.public_port) + " -> " +
           m.tunnel_address + " " + std::to_string(m.vm_port) + " [" + owner + "]";
}

std::set<std::string> Keys(const std::vector<PortMapping>& mappings, const std::string& owner) {
    std::set<std::string> out;
    for (const auto& m : mappings) out.insert(Key(m, owner));
    return out;
}

class NftPortForwarderTest : public ::testing::Test {
  protected:
    NftPortForwarderTest() : ns_("nft"), forwarder_(Options()) {}
    ~NftPortForwarderTest() override { [[maybe_unused]] auto r = forwarder_.RemoveAll(); }

    NftPortForwarderOptions Options() const {
        NftPortForwarderOptions o;
        o.netns = ns_.name();
        return o;
    }

    // The judge: `nft -j list map` read independently of the adapter's parser.
    std::set<std::string> Installed() const {
        const auto r = ns_.Exec({"nft", "-j", "list", "map", "inet", "decloud_relay", "ports"});
        if (r.exit_code != 0) return {};
        std::set<std::string> out;
        const auto doc = nlohmann::json::parse(r.out);
        for (const auto& item : doc.at("nftables")) {
            if (!item.contains("map")) continue;
            for (const auto& pair : item.at("map").value("elem", nlohmann::json::array())) {
                auto key = pair.at(0);
                std::string owner;
                if (key.contains("elem")) {
                    owner = key.at("elem").value("comment", "");
                    key = key.at("elem").at("val");
                }
                const auto& k = key.at("concat");
                const auto& v = pair.at(1).at("concat");
                out.insert(k.at(0).get<std::string>() + " " + std::to_string(k.at(1).get<int>()) +
                           " -> " + v.at(0).get<std::string>() + " " +
                           std::to_string(v.at(1).get<int>()) + " [" + owner + "]");
            }
        }
        return out;
    }

    std::set<std::string> Interfaces() const {
        const auto r =
            ns_.Exec({"nft", "-j", "list", "set", "inet", "decloud_relay", "relay_ifaces"});
        std::set<std::string> out;
        if (r.exit_code != 0) return out;
        const auto doc = nlohmann::json::parse(r.out);
        for (const auto& item : doc.at("nftables")) {
            if (!item.contains("set")) continue;
            for (const auto& e : item.at("set").value("elem", nlohmann::json::array()))
                out.insert(e.get<std::string>());
        }
        return out;
    }

    std::string Chain(const std::string& chain) const {
        return ns_.Exec({"nft", "list", "chain", "inet", "decloud_relay", chain}).out;
    }

    NetNamespace ns_;
    NftPortForwarder forwarder_;
};

// Counts committed transactions (ruleset generations) with `nft monitor` in the namespace.
class GenerationMonitor {
  public:
    explicit GenerationMonitor(const NetNamespace& ns) : ns_(ns) {
        // Line-buffered: nft writes to a file, which stdio would otherwise buffer until exit.
        monitor_ = ns.Spawn("stdbuf", {"-oL", "nft", "monitor"}, dir_.path() + "/monitor.log");
        // Subscribed once a probe transaction shows up.
        const bool ready = testing::WaitUntil(
            [&] {
                ns_.Exec({"nft", "add table inet decloud_probe; delete table inet decloud_probe"});
                return Count() > 0;
            },
            30s, 100ms);
        if (!ready) throw std::runtime_error("nft monitor did not start: " + monitor_->Log());
    }
    ~GenerationMonitor() { monitor_->Terminate(2s); }

    std::vector<std::string> Lines() const {
        std::ifstream in(dir_.path() + "/monitor.log");
        std::vector<std::string> lines;
        std::string line;
        while (std::getline(in, line)) lines.push_back(line);
        return lines;
    }
    int Count() const {
        const auto lines = Lines();
        return static_cast<int>(std::count_if(lines.begin(), lines.end(), [](const auto& l) {
            return l.starts_with("# new generation");
        }));
    }
    std::string Log() const { return monitor_->Log(); }

  private:
    const NetNamespace& ns_;
    testing::TempDir dir_{"decloud-nft-monitor"};
    std::unique_ptr<testing::ChildProcess> monitor_;
};

TEST_F(NftPortForwarderTest, ReconcileFromEmptyInstallsTheTableAndNftAgrees) {
    const std::vector<PortMapping> desired = {
        Tcp(8080, "10.99.0.2", 80), Udp(5353, "10.99.0.2", 53), Tcp(2222, "10.99.0.3", 22)};
    ASSERT_TRUE(forwarder_.Reconcile(kIfA, desired));
    EXPECT_EQ(forwarder_.Transactions(), 1u) << "skeleton and elements in one transaction";
    EXPECT_EQ(Installed(), Keys(desired, kIfA));
    EXPECT_EQ(Interfaces(), (std::set<std::string>{kIfA}));
    EXPECT_NE(Chain("prerouting")
                  .find("fib daddr type local dnat ip to meta l4proto . th dport map @ports"),
              std::string::npos)
        << Chain("prerouting");
    EXPECT_NE(Chain("forward").find("oifname @relay_ifaces ct status dnat accept"),
              std::string::npos);
    EXPECT_NE(Chain("forward").find("iifname @relay_ifaces drop"), std::string::npos);
    EXPECT_NE(Chain("postrouting").find("oifname @relay_ifaces ct status dnat masquerade"),
              std::string::npos);
    EXPECT_EQ(ns_.Run({"cat", "/proc/sys/net/ipv4/ip_forward"}), "1\n");

    auto read = forwarder_.Read(kIfA);
    ASSERT_TRUE(read);
    auto sorted = desired;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(*read, sorted);

    // Idempotent: the same desired state again changes nothing, with or without a fresh read.
    ASSERT_TRUE(forwarder_.Apply(kIfA, desired));
    ASSERT_TRUE(forwarder_.Reconcile(kIfA, desired));
    EXPECT_EQ(forwarder_.Transactions(), 1u);
    EXPECT_EQ(Installed(), Keys(desired, kIfA));
}

TEST_F(NftPortForwarderTest, AddingOrRemovingOneOfTenThousandMappingsIsOneSmallTransaction) {
    auto mappings = Many(10000);
    auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(forwarder_.Apply(kIfA, mappings));
    const auto initial = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(Installed().size(), 10000u);

    auto watching = std::make_unique<GenerationMonitor>(ns_);
    auto& monitor = *watching;
    const auto seen = monitor.Lines().size();
    const int before = monitor.Count();
    const auto transactions = forwarder_.Transactions();

    mappings.push_back(Tcp(40000, "10.99.200.1", 443));
    ASSERT_TRUE(forwarder_.Apply(kIfA, mappings));
    mappings.erase(mappings.begin() + 5000);  // public port 25000
    ASSERT_TRUE(forwarder_.Apply(kIfA, mappings));
    mappings[0].vm_port = 8443;  // retarget: delete + add of the same key
    ASSERT_TRUE(forwarder_.Apply(kIfA, mappings));

    // Three transactions, and in them exactly the four element changes: no rebuild.
    EXPECT_TRUE(testing::WaitUntil([&] { return monitor.Count() >= before + 3; }, 5s, 20ms));
    std::this_thread::sleep_for(300ms);  // nothing else may follow
    EXPECT_EQ(monitor.Count(), before + 3) << monitor.Log();
    EXPECT_EQ(forwarder_.Transactions(), transactions + 3);
    const auto lines = monitor.Lines();
    std::vector<std::string> changes;
    for (auto it = lines.begin() + static_cast<std::ptrdiff_t>(seen); it != lines.end(); ++it) {
        if (!it->starts_with("#")) changes.push_back(it->substr(0, it->find(" comment")));
    }
    EXPECT_EQ(changes, (std::vector<std::string>{
                           "add element inet decloud_relay ports { tcp . 40000",
                           "delete element inet decloud_relay ports { tcp . 25000",
                           "delete element inet decloud_relay ports { tcp . 20000",
                           "add element inet decloud_relay ports { tcp . 20000",
                       }))
        << monitor.Log();
    EXPECT_EQ(Installed(), Keys(mappings, kIfA));

    // Timing: the median of five single additions and five single removals, without the
    // monitor (it refreshes its own copy of the set on every deletion it sees, which competes
    // with the next transaction).
    watching.reset();
    std::vector<std::chrono::steady_clock::duration> adds;
    std::vector<std::chrono::steady_clock::duration> removes;
    for (int i = 0; i < 5; ++i) {
        mappings.push_back(Tcp(static_cast<std::uint16_t>(41000 + i), "10.99.201.1", 80));
        t0 = std::chrono::steady_clock::now();
        ASSERT_TRUE(forwarder_.Apply(kIfA, mappings));
        adds.push_back(std::chrono::steady_clock::now() - t0);
    }
    for (int i = 0; i < 5; ++i) {
        mappings.pop_back();
        t0 = std::chrono::steady_clock::now();
        ASSERT_TRUE(forwarder_.Apply(kIfA, mappings));
        removes.push_back(std::chrono::steady_clock::now() - t0);
    }
    std::sort(adds.begin(), adds.end());
    std::sort(removes.begin(), removes.end());
    const auto ms = [](auto d) {
        return std::chrono::duration_cast<std::chrono::microseconds>(d).count() / 1000.0;
    };
    std::cout << "nft, 10000 mappings (" << kBuild << "): initial apply " << ms(initial)
              << " ms; add one: median " << ms(adds[2]) << " ms, max " << ms(adds[4])
              << " ms; remove one: median " << ms(removes[2]) << " ms, max " << ms(removes[4])
              << " ms\n";
    // The bench holds the release build to 10 ms; here, on a shared machine under ASan, only
    // the order of magnitude: far below re-adding all 10,000.
    EXPECT_LT(adds[2], initial / 3);
    EXPECT_LT(removes[2], initial / 3);
}

TEST_F(NftPortForwarderTest, MappingsAreOwnedPerInterface) {
    ASSERT_TRUE(forwarder_.Apply(kIfA, {Tcp(8080, "10.99.0.2", 80)}));
    ASSERT_TRUE(forwarder_.Apply(kIfB, {Tcp(9090, "10.98.0.2", 80), Udp(8080, "10.98.0.2", 53)}));
    const auto conflict = forwarder_.Apply(kIfB, {Tcp(8080, "10.98.0.2", 80)});
    ASSERT_FALSE(conflict);
    EXPECT_EQ(conflict.error().code, common::ErrorCode::kConflict);
    EXPECT_NE(conflict.error().message.find(kIfA), std::string::npos);
    // The refused change changed nothing.
    auto expected = Keys({Tcp(8080, "10.99.0.2", 80)}, kIfA);
    expected.merge(Keys({Tcp(9090, "10.98.0.2", 80), Udp(8080, "10.98.0.2", 53)}, kIfB));
    EXPECT_EQ(Installed(), expected);
    EXPECT_EQ(Interfaces(), (std::set<std::string>{kIfA, kIfB}));

    ASSERT_TRUE(forwarder_.Remove(kIfA));
    EXPECT_EQ(Installed(), Keys({Tcp(9090, "10.98.0.2", 80), Udp(8080, "10.98.0.2", 53)}, kIfB));
    EXPECT_EQ(Interfaces(), (std::set<std::string>{kIfB}));
    EXPECT_TRUE(forwarder_.Read(kIfA)->empty());
    ASSERT_TRUE(forwarder_.Remove(kIfA)) << "removing twice is fine";

    ASSERT_TRUE(forwarder_.RemoveAll());
    EXPECT_NE(ns_.Exec({"nft", "list", "table", "inet", "decloud_relay"}).exit_code, 0);
    ASSERT_TRUE(forwarder_.RemoveAll()) << "removing a missing table is fine";
    ASSERT_TRUE(forwarder_.Remove(kIfB));
}

TEST_F(NftPortForwarderTest, ClaimMovesAPortBetweenInterfacesInOneTransaction) {
    ASSERT_TRUE(forwarder_.Apply(kIfA, {Tcp(8080, "10.99.0.2", 80)}));
    ASSERT_TRUE(forwarder_.Apply(kIfB, {Tcp(9090, "10.98.0.2", 80)}));
    const auto before = forwarder_.Transactions();
    ASSERT_TRUE(forwarder_.Claim(kIfB, {Tcp(9090, "10.98.0.2", 80), Tcp(8080, "10.98.0.2", 80)}));
    EXPECT_EQ(forwarder_.Transactions(), before + 1) << "delete and add in one transaction";
    EXPECT_EQ(Installed(), Keys({Tcp(9090, "10.98.0.2", 80), Tcp(8080, "10.98.0.2", 80)}, kIfB));
    EXPECT_TRUE(forwarder_.Read(kIfA)->empty());
    // What the forwarder remembers agrees with the kernel: the loser has nothing left to change.
    ASSERT_TRUE(forwarder_.Apply(kIfA, {}));
    EXPECT_EQ(forwarder_.Transactions(), before + 1);
    // Plain Apply still refuses to take a port.
    EXPECT_EQ(forwarder_.Apply(kIfA, {Tcp(8080, "10.99.0.2", 80)}).error().code,
              common::ErrorCode::kConflict);
}

TEST_F(NftPortForwarderTest, ReconcileUndoesChangesMadeBehindItsBack) {
    const std::vector<PortMapping> desired = {Tcp(8080, "10.99.0.2", 80),
                                              Tcp(8081, "10.99.0.2", 81)};
    ASSERT_TRUE(forwarder_.Apply(kIfA, desired));
    ns_.Run({"nft", "delete element inet decloud_relay ports { tcp . 8081 }"});
    ns_.Run({"nft", "add element inet decloud_relay ports { tcp . 9999 comment \"" +
                        std::string(kIfA) + "\" : 10.1.1.1 . 1 }"});
    ns_.Run({"nft", "flush chain inet decloud_relay forward"});
    ASSERT_TRUE(forwarder_.Reconcile(kIfA, desired));
    EXPECT_EQ(Installed(), Keys(desired, kIfA));
    EXPECT_NE(Chain("forward").find("iifname @relay_ifaces drop"), std::string::npos);
    // Reconciling once more finds nothing to do.
    const auto n = forwarder_.Transactions();
    ASSERT_TRUE(forwarder_.Reconcile(kIfA, desired));
    EXPECT_EQ(forwarder_.Transactions(), n);
}

TEST_F(NftPortForwarderTest, ApplyRecoversWhenWhatItKnewIsStale) {
    ASSERT_TRUE(forwarder_.Apply(kIfA, {Tcp(8080, "10.99.0.2", 80), Tcp(8081, "10.99.0.2", 81)}));
    ns_.Run({"nft", "delete table inet decloud_relay"});
    // Deleting 8081 from a table that no longer exists fails; the adapter reads and retries.
    const std::vector<PortMapping> desired = {Tcp(8080, "10.99.0.2", 80),
                                              Tcp(8082, "10.99.0.2", 82)};
    ASSERT_TRUE(forwarder_.Apply(kIfA, desired));
    EXPECT_EQ(Installed(), Keys(desired, kIfA));
    EXPECT_EQ(Interfaces(), (std::set<std::string>{kIfA}));
    EXPECT_NE(Chain("prerouting").find("dnat ip to"), std::string::npos);
}

TEST_F(NftPortForwarderTest, BadInputIsRefused) {
    EXPECT_EQ(forwarder_.Apply(kIfA, {Tcp(80, "10.99.0.2 } ; flush ruleset ;", 80)}).error().code,
              common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(forwarder_.Apply("bad name", {}).error().code, common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(
        forwarder_.Apply(kIfA, {Tcp(80, "10.99.0.2", 80), Tcp(80, "10.99.0.3", 80)}).error().code,
        common::ErrorCode::kInvalidArgument);
    EXPECT_EQ(forwarder_.Transactions(), 0u);
    EXPECT_THROW(NftPortForwarder(NftPortForwarderOptions{"bad-table", "", true}),
                 std::invalid_argument);
}

}  // namespace
}  // namespace decloud::agent::adapters
