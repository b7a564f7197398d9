// SPDX-License-Identifier: BSD-2-Clause
// rlgate-l7's Redis store against a real 3-node Redis Cluster made by the
// test on loopback ports (redis-cli --cluster create): the client's slot of
// a key is Redis's own; a decision whose keys live in different slots (and
// nodes) is all-or-nothing; two stores sharing the cluster never admit past
// a limit; a MOVED and an ASK redirection, caused by really moving a slot,
// are followed.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <set>
#include <sstream>
#include <thread>

#include "core/ratelimit/redis_script.hpp"
#include "l7/redis_store.hpp"
#include "redis/store/store_harness.hpp"
#include "redis/cluster.hpp"
#include "support/bpf_env.hpp"
#include "support/redis_server.hpp"

namespace rlgate::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using ratelimit::LimitSpec;
using Keyed = ratelimit::MemoryStore::KeyedLimits;

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return s;
}

// Three masters, no replicas, every slot assigned.
class RedisClusterTest : public ::testing::Test {
protected:
    void SetUp() override {
        RLGATE_REQUIRE(RedisServer::available(), "needs redis-server and redis-cli (Debian: redis-server)");
        for (int i = 0; i < 3; ++i) {
            // The cluster bus needs a port too (by default port + 10000: maybe taken, maybe > 65535).
            std::uint16_t port = free_port(), bus = free_port();
            while (bus == port)
                bus = free_port();
            nodes_.push_back(std::make_unique<RedisServer>(RedisServerOptions{
                .args = {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout",
                         "2000", "--cluster-port", std::to_string(bus)},
                .port = port}));
        }
        std::string create = "--cluster create";
        for (const auto& n : nodes_)
            create += " 127.0.0.1:" + std::to_string(n->port());
        const auto out = nodes_[0]->cli(create + " --cluster-replicas 0 --cluster-yes");
        ASSERT_NE(out.find("All 16384 slots covered"), std::string::npos) << out;
        const auto deadline = std::chrono::steady_clock::now() + 15s;
        for (const auto& n : nodes_) {
            const auto ok = [&] { return n->cli("CLUSTER INFO").find("cluster_state:ok") != std::string::npos; };
            while (!ok() && std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(50ms);
            ASSERT_TRUE(ok()) << n->cli("CLUSTER INFO");
        }
        // Every node must know every slot's owner before a client reads the map from it.
        for (const auto& n : nodes_)
            while (n->cli("CLUSTER SLOTS").find(std::to_string(nodes_[2]->port())) == std::string::npos &&
                   std::chrono::steady_clock::now() < deadline)
                std::this_thread::sleep_for(50ms);
        harness_.emplace();
    }
    void TearDown() override { harness_.reset(); }

    l7::RedisStore& store(unsigned seed_node = 0) {
        l7::RedisStoreSettings s;
        s.cluster = true;
        s.host = "127.0.0.1";
        s.port = nodes_[seed_node]->port();
        s.seeds.emplace_back("127.0.0.1", nodes_[(seed_node + 1) % 3]->port());
        s.prefix = "c:";
        s.timeout_ns = 1'000'000'000;
        s.connect_timeout_ns = 1'000'000'000;
        s.on_failure = l7::RedisFailure::closed;
        return harness_->store(s, 10s);  // up: the whole cluster's masters connected
    }

    ratelimit::Decision decide(l7::RedisStore& st, const std::vector<Keyed>& keyed, std::uint64_t cost = 1) {
        return harness_->decide(st, keyed, cost);
    }

    // The Redis key (with prefix and tag) of the first limit of `key`, and its slot.
    static std::string redis_key(const Keyed& k) {
        const std::vector<Keyed> one = {k};
        return ratelimit::redis::build_call(one, 1, "c:", 0, ratelimit::redis::Tagging::per_key).keys.front();
    }
    // The node serving `slot` now, from CLUSTER NODES ("id host:port@bus flags ... ranges").
    RedisServer& owner_of(std::uint16_t slot) {
        std::istringstream lines(nodes_[0]->cli("CLUSTER NODES"));
        std::string line;
        while (std::getline(lines, line)) {
            std::istringstream fields(line);
            std::vector<std::string> f;
            for (std::string w; fields >> w;)
                f.push_back(w);
            for (std::size_t i = 8; i < f.size(); ++i) {
                if (f[i].starts_with("["))
                    continue;  // a migration in progress, not a range
                const auto dash = f[i].find('-');
                const unsigned long lo = std::stoul(f[i].substr(0, dash));
                const unsigned long hi = dash == std::string::npos ? lo : std::stoul(f[i].substr(dash + 1));
                if (slot < lo || slot > hi)
                    continue;
                const auto port = f[1].substr(f[1].find(':') + 1, f[1].find('@') - f[1].find(':') - 1);
                for (auto& n : nodes_)
                    if (std::to_string(n->port()) == port)
                        return *n;
            }
        }
        throw std::runtime_error("no owner for slot " + std::to_string(slot));
    }

    std::vector<std::unique_ptr<RedisServer>> nodes_;
    std::optional<StoreHarness> harness_;  // before the nodes go: stores stop first
};

LimitSpec per_minute(std::uint64_t limit) {
    return LimitSpec{.name = std::to_string(limit) + "/min", .algorithm = ratelimit::Algorithm::gcra, .limit = limit,
                     .period_ns = 60'000'000'000ULL};
}

TEST_F(RedisClusterTest, KeySlotIsTheClusterOwn) {
    EXPECT_EQ(redis::key_slot("123456789"), 0x31C3 % 16384);
    for (const std::string key : {"123456789", "foo", "{user1000}.following", "{user1000}.followers", "foo{}{bar}",
                                  "foo{{bar}}zap", "foo{bar}{zap}", "{}", "c:{0123456789abcdef}x|0|gcra2"}) {
        const auto redis = trim(nodes_[0]->cli("CLUSTER KEYSLOT " + sh_quote(key)));
        EXPECT_EQ(std::to_string(redis::key_slot(key)), redis) << key;
    }
}

TEST_F(RedisClusterTest, AMultiKeyDecisionAcrossSlotsIsAllOrNothing) {
    auto& st = store();
    const std::vector<LimitSpec> five = {per_minute(5)}, eight = {per_minute(8)};
    const Keyed global{"global", eight};
    // Keys whose slots are on a node other than the global key's: the decision spans nodes.
    const auto global_port = owner_of(redis::key_slot(redis_key(global))).port();
    std::vector<std::string> names;
    for (int i = 0; names.size() < 2 && i < 100; ++i) {
        const std::string name = "key:" + std::to_string(i);
        if (owner_of(redis::key_slot(redis_key(Keyed{name, five}))).port() != global_port)
            names.push_back(name);
    }
    ASSERT_EQ(names.size(), 2U);
    const Keyed a{names[0], five}, b{names[1], five};
    ASSERT_NE(redis::key_slot(redis_key(a)), redis::key_slot(redis_key(b)));

    int allowed_a = 0;
    for (int i = 0; i < 7; ++i)
        allowed_a += decide(st, {a, global}).allowed;
    EXPECT_EQ(allowed_a, 5);
    // A's refusals charged nothing to "global": B still finds 3 of its 8.
    int allowed_b = 0;
    ratelimit::Decision last;
    for (int i = 0; i < 5; ++i) {
        last = decide(st, {b, global});
        allowed_b += last.allowed;
    }
    EXPECT_EQ(allowed_b, 3);
    EXPECT_FALSE(last.allowed);
    EXPECT_EQ(last.tightest_group, 1U) << "refused by the global limit";
    EXPECT_GT(last.tightest.retry_after_ns, 0);
    EXPECT_EQ(st.stats().redis + st.stats().cache, 12U);
}

TEST_F(RedisClusterTest, TwoStoresSharingTheClusterNeverAdmitPastALimit) {
    auto& s1 = store(0);
    auto& s2 = store(1);
    const std::vector<LimitSpec> forty = {per_minute(40)}, roomy = {per_minute(100'000)};
    const Keyed x{"key:X", forty}, global{"global-roomy", roomy};
    std::atomic<int> allowed{0};
    std::vector<std::jthread> clients;
    for (int t = 0; t < 4; ++t)
        clients.emplace_back([&, t] {
            for (int i = 0; i < 30; ++i)
                allowed += decide(t % 2 ? s1 : s2, {x, global}).allowed;
        });
    clients.clear();
    EXPECT_EQ(allowed.load(), 40);
}

TEST_F(RedisClusterTest, MovedAndAskRedirectionsAreFollowed) {
    auto& st = store();
    const std::vector<LimitSpec> five = {per_minute(5)};
    const Keyed k{"key:K", five};
    const auto slot = redis::key_slot(redis_key(k));
    ASSERT_TRUE(decide(st, {k}).allowed);
    auto& source = owner_of(slot);
    RedisServer* target = nullptr;
    for (auto& n : nodes_)
        if (n.get() != &source)
            target = n.get();
    const auto source_id = trim(source.cli("CLUSTER MYID"));
    const auto target_id = trim(target->cli("CLUSTER MYID"));
    const auto s = std::to_string(slot);

    // ASK: the slot is being migrated; a key the source does not hold is served by the target.
    ASSERT_EQ(trim(target->cli("CLUSTER SETSLOT " + s + " IMPORTING " + source_id)), "OK");
    ASSERT_EQ(trim(source.cli("CLUSTER SETSLOT " + s + " MIGRATING " + target_id)), "OK");
    std::string fresh;  // a key of the same slot that nobody has used yet
    for (int i = 0; fresh.empty(); ++i) {
        const std::string name = "key:fresh-" + std::to_string(i);
        if (redis::key_slot(redis_key(Keyed{name, five})) == slot)
            fresh = name;
    }
    const Keyed f{fresh, five};
    const auto asked = decide(st, {f});
    EXPECT_TRUE(asked.allowed);
    EXPECT_GE(st.stats().ask, 1U);
    EXPECT_EQ(trim(target->cli("CLUSTER COUNTKEYSINSLOT " + s)), "1") << "written on the target, by ASKING";

    // MOVED: the migration ends (K's state moved with MIGRATE), the store still thinks the source owns it.
    const auto keys = trim(source.cli("CLUSTER GETKEYSINSLOT " + s + " 10"));
    ASSERT_FALSE(keys.empty());
    const auto migrated = trim(source.cli("MIGRATE 127.0.0.1 " + std::to_string(target->port()) + " " +
                                          sh_quote("") + " 0 5000 KEYS " + sh_quote(keys)));
    ASSERT_EQ(migrated, "OK");
    for (auto* n : {target, &source})
        ASSERT_EQ(trim(n->cli("CLUSTER SETSLOT " + s + " NODE " + target_id)), "OK");
    for (auto& n : nodes_)
        if (n.get() != target && n.get() != &source) {
            EXPECT_EQ(trim(n->cli("CLUSTER SETSLOT " + s + " NODE " + target_id)), "OK");
        }
    const auto moved_before = st.stats().moved;
    const auto second = decide(st, {k});
    EXPECT_TRUE(second.allowed);
    EXPECT_EQ(second.tightest.remaining, 3U) << "K's count went with the slot";
    EXPECT_GT(st.stats().moved, moved_before);
    EXPECT_EQ(st.stats().local + st.stats().closed, 0U) << "every decision was Redis's";
}

}  // namespace
}  // namespace rlgate::testing
