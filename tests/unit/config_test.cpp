// SPDX-License-Identifier: BSD-2-Clause
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/config/config.hpp"

using namespace rlgate::config;
using rlgate::net::Cidr;
using rlgate::policy::RuleProtocol;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    EXPECT_TRUE(in) << "cannot open " << path;
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Cidr cidr(const char* text) {
    return *Cidr::parse(text);
}

// The error a text is rejected with; field "<accepted>" when it parses.
ConfigError error_of(const std::string& text) {
    try {
        (void)parse_config(text, "t.json");
    } catch (const ConfigError& e) {
        return e;
    }
    return ConfigError("t.json", "<accepted>", "");
}

// A valid file with one tier plus `extra` top-level fields.
std::string with_tier(const std::string& extra = "") {
    return R"({"tiers": {"free": {"pps": 10, "burst": 20}})" + (extra.empty() ? "" : ", " + extra) + "}";
}

}  // namespace

TEST(ConfigExamples, FullExampleParsesIntoTheModel) {
    const auto cfg = parse_config(read_file(RLGATE_EXAMPLES_DIR "/rlgate.json"), "rlgate.json");

    ASSERT_EQ(cfg.interfaces.size(), 2U);
    EXPECT_EQ(cfg.interfaces[0], (InterfaceConfig{"eth0", AttachModeSetting::native}));
    EXPECT_EQ(cfg.interfaces[1], (InterfaceConfig{"eth1", AttachModeSetting::generic}));

    EXPECT_EQ(cfg.daemon.pin_dir, "/sys/fs/bpf/rlgate");
    EXPECT_EQ(cfg.daemon.socket_path, "/run/rlgate/rlgated.sock");
    EXPECT_EQ(cfg.daemon.state_dir, "/var/lib/rlgate");
    EXPECT_EQ(cfg.daemon.log_level, "info");
    EXPECT_EQ(cfg.maps.buckets, 1048576U);
    EXPECT_EQ(cfg.maps.classes, 65536U);
    EXPECT_EQ(cfg.maps.bans, 65536U);
    EXPECT_TRUE(cfg.maps.seen_filter);
    EXPECT_FALSE(parse_config(R"({"tiers": {"only": {}}, "maps": {"seen_filter": false}})", "t.json").maps.seen_filter);
    EXPECT_EQ(cfg.events.per_sec, 100U);
    EXPECT_EQ(cfg.events.burst, 100U);

    const auto& p = cfg.policy;
    EXPECT_FALSE(p.dry_run);
    EXPECT_FALSE(p.drop_malformed);
    EXPECT_EQ(p.default_tier, "default");

    ASSERT_EQ(p.tiers.size(), 3U);  // file order, not alphabetical
    EXPECT_EQ(p.tiers[0].name, "default");
    EXPECT_EQ(p.tiers[1].name, "premium");
    EXPECT_EQ(p.tiers[2].name, "carrier-nat");
    const auto& def = p.tiers[0];
    EXPECT_EQ(def.limit.packets_per_sec, 100U);
    EXPECT_EQ(def.limit.burst_packets, 200U);
    EXPECT_EQ(def.limit.bytes_per_sec, 1'000'000U);
    EXPECT_EQ(def.limit.burst_bytes, 64'000U);
    EXPECT_EQ(def.prefix_v4, 32U);
    EXPECT_EQ(def.prefix_v6, 64U);
    EXPECT_EQ(def.autoban.drops, 1000U);
    EXPECT_EQ(def.autoban.window_ns, 10'000'000'000ULL);
    EXPECT_EQ(def.autoban.ban_ns, 60'000'000'000ULL);
    EXPECT_EQ(p.tiers[1].limit.packets_per_sec, 10000U);
    EXPECT_EQ(p.tiers[1].limit.burst_packets, 20000U);
    EXPECT_EQ(p.tiers[1].autoban.drops, 0U) << "no autoban block: off";
    EXPECT_EQ(p.tiers[2].prefix_v4, 24U);
    EXPECT_EQ(p.tiers[2].prefix_v6, 48U);

    ASSERT_EQ(p.members.size(), 3U);
    EXPECT_EQ(p.members[0].prefix, cidr("198.51.100.0/24"));
    EXPECT_EQ(p.members[0].tier, "premium");
    EXPECT_EQ(p.members[1].prefix, cidr("2001:db8:100::/48"));
    EXPECT_EQ(p.members[1].tier, "premium");
    EXPECT_EQ(p.members[2].prefix, cidr("100.64.0.0/10"));
    EXPECT_EQ(p.members[2].tier, "carrier-nat");

    ASSERT_EQ(p.rules.size(), 4U);
    const auto& ssh = p.rules[0];
    EXPECT_EQ(ssh.name, "ssh");
    EXPECT_EQ(ssh.protocol, RuleProtocol::tcp);
    EXPECT_EQ(ssh.port_first, 22);
    EXPECT_EQ(ssh.port_last, 22);
    EXPECT_TRUE(ssh.syn_only);
    EXPECT_EQ(ssh.limit.packets_per_sec, 5U);
    EXPECT_EQ(ssh.limit.burst_packets, 10U);
    ASSERT_EQ(ssh.tier_limits.size(), 1U);
    EXPECT_EQ(ssh.tier_limits.at("premium").packets_per_sec, 50U);
    EXPECT_EQ(ssh.tier_limits.at("premium").burst_packets, 100U);
    const auto& dns = p.rules[1];
    EXPECT_EQ(dns.protocol, RuleProtocol::udp);
    EXPECT_EQ(dns.port_first, 53);
    EXPECT_EQ(dns.port_last, 53);
    EXPECT_FALSE(dns.syn_only);
    const auto& api = p.rules[2];
    EXPECT_EQ(api.port_first, 8000);
    EXPECT_EQ(api.port_last, 8099);
    ASSERT_EQ(api.tier_limits.count("premium"), 1U);
    EXPECT_TRUE(api.tier_limits.at("premium").unlimited());
    const auto& other = p.rules[3];
    EXPECT_EQ(other.name, "icmp-etc");
    EXPECT_EQ(other.protocol, RuleProtocol::other);
    EXPECT_EQ(other.limit.packets_per_sec, 10U);

    ASSERT_EQ(p.allow.size(), 2U);
    EXPECT_EQ(p.allow[0], cidr("10.0.0.0/8"));
    EXPECT_EQ(p.allow[1], cidr("2001:db8:ffff::/48"));
    ASSERT_EQ(p.deny.size(), 1U);
    EXPECT_EQ(p.deny[0], cidr("192.0.2.66/32"));

    EXPECT_EQ(p.global.packets_per_sec, 1'000'000U);
    EXPECT_EQ(p.global.burst_packets, 100'000U);
    EXPECT_EQ(p.global.bytes_per_sec, 1'000'000'000U);
    EXPECT_EQ(p.global.burst_bytes, 10'000'000U);
}

TEST(ConfigExamples, QuickstartParses) {
    const auto cfg = parse_config(read_file(RLGATE_EXAMPLES_DIR "/quickstart.json"), "quickstart.json");
    ASSERT_EQ(cfg.interfaces.size(), 1U);
    EXPECT_EQ(cfg.interfaces[0], (InterfaceConfig{"rlq-gw", AttachModeSetting::native}));
    EXPECT_EQ(cfg.daemon.pin_dir, "/sys/fs/bpf/rlgate-quickstart");
    EXPECT_EQ(cfg.daemon.socket_path, "/run/rlgate-quickstart/rlgated.sock");
    EXPECT_EQ(cfg.daemon.state_dir, "/run/rlgate-quickstart/state");
    EXPECT_FALSE(cfg.policy.dry_run);
    ASSERT_EQ(cfg.policy.tiers.size(), 2U);
    EXPECT_EQ(cfg.policy.tiers[0].name, "default");
    EXPECT_EQ(cfg.policy.tiers[0].limit.packets_per_sec, 100U);
    EXPECT_EQ(cfg.policy.tiers[0].limit.burst_packets, 200U);
    EXPECT_EQ(cfg.policy.tiers[1].name, "premium");
    EXPECT_EQ(cfg.policy.tiers[1].limit.packets_per_sec, 10000U);
    EXPECT_EQ(cfg.policy.tiers[1].limit.burst_packets, 20000U);
    EXPECT_EQ(cfg.policy.default_tier, "default");
    ASSERT_EQ(cfg.policy.members.size(), 1U);
    EXPECT_EQ(cfg.policy.members[0].prefix, cidr("10.99.0.0/28"));
    EXPECT_EQ(cfg.policy.members[0].tier, "premium");
    EXPECT_TRUE(cfg.policy.rules.empty());
}

TEST(ConfigParse, DefaultsWhenFieldsAreOmitted) {
    const auto cfg = parse_config(R"({"tiers": {"only": {}}})", "t.json");
    EXPECT_TRUE(cfg.interfaces.empty()) << "no interfaces is allowed: attach later";
    EXPECT_EQ(cfg.daemon.pin_dir, "/sys/fs/bpf/rlgate");
    EXPECT_EQ(cfg.daemon.socket_path, "/run/rlgate/rlgated.sock");
    EXPECT_EQ(cfg.daemon.state_dir, "/var/lib/rlgate");
    EXPECT_EQ(cfg.daemon.log_level, "info");
    EXPECT_EQ(cfg.maps.buckets, 1U << 20);
    EXPECT_EQ(cfg.maps.classes, 65536U);
    EXPECT_EQ(cfg.maps.bans, 65536U);
    EXPECT_EQ(cfg.events.per_sec, 100U);
    EXPECT_EQ(cfg.events.burst, 100U);
    const auto& p = cfg.policy;
    ASSERT_EQ(p.tiers.size(), 1U);
    EXPECT_EQ(p.default_tier, "only") << "defaults to the first tier";
    EXPECT_TRUE(p.tiers[0].limit.unlimited());
    EXPECT_EQ(p.tiers[0].prefix_v4, 32U);
    EXPECT_EQ(p.tiers[0].prefix_v6, 64U);
    EXPECT_EQ(p.tiers[0].autoban.drops, 0U);
    EXPECT_TRUE(p.members.empty());
    EXPECT_TRUE(p.rules.empty());
    EXPECT_TRUE(p.allow.empty());
    EXPECT_TRUE(p.deny.empty());
    EXPECT_TRUE(p.global.unlimited());
    EXPECT_FALSE(p.dry_run);
    EXPECT_FALSE(p.drop_malformed);
}

TEST(ConfigParse, RuleDefaultsAndAutobanDefaults) {
    const auto cfg = parse_config(R"({
        "tiers": {"a": {"pps": 1, "burst": 1, "autoban": {"drops": 5}}},
        "rules": [{"name": "web", "proto": "tcp"}, {"name": "q", "proto": "udp", "ports": 443}]
    })",
                                  "t.json");
    const auto& p = cfg.policy;
    EXPECT_EQ(p.tiers[0].autoban.drops, 5U);
    EXPECT_EQ(p.tiers[0].autoban.window_ns, 10'000'000'000ULL);
    EXPECT_EQ(p.tiers[0].autoban.ban_ns, 60'000'000'000ULL);
    ASSERT_EQ(p.rules.size(), 2U);
    EXPECT_EQ(p.rules[0].port_first, 0) << "ports omitted = all ports";
    EXPECT_EQ(p.rules[0].port_last, 65535);
    EXPECT_TRUE(p.rules[0].limit.unlimited()) << "no pps/bytes: matching packets are not limited";
    EXPECT_TRUE(p.rules[0].tier_limits.empty());
    EXPECT_EQ(p.rules[1].port_first, 443);
    EXPECT_EQ(p.rules[1].port_last, 443);
}

TEST(ConfigParse, AcceptsCommentsQuantitiesAndIntegralFloats) {
    const auto cfg = parse_config(R"(
        // line comment
        { /* block
             comment */ "tiers": {"t": {"pps": 1e3, "burst": 2000, // trailing
            "bytes_per_sec": "10MB", "burst_bytes": 65536}},
          "interfaces": [{"name": "veth0", "mode": "auto"}], "dry_run": true, "drop_malformed": true }
    )",
                                  "t.json");
    EXPECT_EQ(cfg.policy.tiers[0].limit.packets_per_sec, 1000U);
    EXPECT_EQ(cfg.policy.tiers[0].limit.bytes_per_sec, 10'000'000U);
    EXPECT_EQ(cfg.policy.tiers[0].limit.burst_bytes, 65536U);
    EXPECT_EQ(cfg.interfaces.at(0).mode, AttachModeSetting::automatic);
    EXPECT_TRUE(cfg.policy.dry_run);
    EXPECT_TRUE(cfg.policy.drop_malformed);
}

TEST(ConfigErrors, WhatReadsFileFieldReason) {
    const auto e = error_of(R"({"tiers": {"free": {"pps": "many"}}})");
    EXPECT_EQ(e.file(), "t.json");
    EXPECT_EQ(e.field(), "tiers.free.pps");
    EXPECT_EQ(e.reason(), "expected a non-negative integer");
    EXPECT_STREQ(e.what(), "t.json: tiers.free.pps: expected a non-negative integer");
}

TEST(ConfigErrors, UnknownFieldsAnywhere) {
    auto e = error_of(with_tier(R"("dryrun": true)"));
    EXPECT_EQ(e.field(), "dryrun");
    EXPECT_TRUE(e.reason().starts_with("unknown field")) << e.reason();
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"psp": 10}}})").field(), "tiers.free.psp");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "port": 22}])")).field(), "rules[0].port");
    EXPECT_EQ(error_of(with_tier(R"("daemon": {"socket_path": "/x"})")).field(), "daemon.socket_path");
    EXPECT_EQ(error_of(with_tier(R"("maps": {"bucket": 2048})")).field(), "maps.bucket");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": [{"name": "e0", "xdp": "native"}])")).field(),
              "interfaces[0].xdp");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"autoban": {"drops": 1, "windows": "1s"}}}})").field(),
              "tiers.free.autoban.windows");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "tiers": {"free": {"rate": 1}}}])"))
                  .field(),
              "rules[0].tiers.free.rate");
    EXPECT_EQ(error_of(with_tier(R"("global": {"packets": 1})")).field(), "global.packets");
}

TEST(ConfigErrors, DuplicateKeysAreNotSilentlyMerged) {
    auto e = error_of(R"({"tiers": {"free": {"pps": 1, "burst": 1}, "free": {"pps": 2, "burst": 2}}})");
    EXPECT_EQ(e.field(), "tiers.free");
    EXPECT_TRUE(e.reason().starts_with("duplicate key")) << e.reason();
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp"}, {"name": "b", "name": "c"}])")).field(),
              "rules[1].name");
    // Keys may repeat across different objects.
    EXPECT_EQ(error_of(R"({"tiers": {"a": {"pps": 1, "burst": 1}, "b": {"pps": 1, "burst": 1}}})").field(),
              "<accepted>");
}

TEST(ConfigErrors, WrongTypesAndNumbers) {
    auto e = error_of(R"({"tiers": {"free": {"pps": -1, "burst": 1}}})");
    EXPECT_EQ(e.field(), "tiers.free.pps");
    EXPECT_EQ(e.reason(), "expected a non-negative integer");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"pps": 1.5, "burst": 1}}})").field(), "tiers.free.pps");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"pps": 10, "burst": true}}})").field(), "tiers.free.burst");
    EXPECT_EQ(error_of(R"({"tiers": []})").field(), "tiers");
    EXPECT_EQ(error_of(R"({"tiers": {}})").reason(), "at least one tier is required");
    EXPECT_EQ(error_of(R"({"rules": []})").field(), "tiers") << "tiers are required";
    EXPECT_EQ(error_of(R"({"tiers": {"free": 5}})").field(), "tiers.free");
    e = error_of("[1]");
    EXPECT_EQ(e.field(), "");
    EXPECT_STREQ(e.what(), "t.json: expected a JSON object at the top level");
    e = error_of(with_tier(R"("dry_run": "yes")"));
    EXPECT_EQ(e.field(), "dry_run");
    EXPECT_EQ(e.reason(), "expected true or false");
    e = error_of(with_tier(R"("default_tier": 3)"));
    EXPECT_EQ(e.field(), "default_tier");
    EXPECT_EQ(e.reason(), "expected a string");
    EXPECT_EQ(error_of(with_tier(R"("allow": "10.0.0.0/8")")).field(), "allow");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"bytes_per_sec": "lots", "burst_bytes": 2000}}})").field(),
              "tiers.free.bytes_per_sec");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"bytes_per_sec": -5, "burst_bytes": 2000}}})").field(),
              "tiers.free.bytes_per_sec");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"prefix_v4": 33}}})").field(), "tiers.free.prefix_v4");
    e = error_of(R"({"tiers": {"free": {"prefix_v6": 4294967360}}})");  // would wrap to 64 as unsigned
    EXPECT_EQ(e.field(), "tiers.free.prefix_v6");
    EXPECT_EQ(e.reason(), "must be 1..112");
    EXPECT_EQ(error_of(with_tier(R"("maps": {"buckets": 1023})")).field(), "maps.buckets");
    EXPECT_EQ(error_of(with_tier(R"("maps": {"bans": 16777217})")).field(), "maps.bans");
    EXPECT_EQ(error_of(with_tier(R"("maps": {"seen_filter": "yes"})")).field(), "maps.seen_filter");
    EXPECT_EQ(error_of(with_tier(R"("events": {"per_sec": 0})")).field(), "events.per_sec");
    EXPECT_EQ(error_of(with_tier(R"("events": {"burst": 1000001})")).field(), "events.burst");
}

TEST(ConfigErrors, LimitsAreCheckedWithTheCompilersRulesAndConfigPaths) {
    auto e = error_of(R"({"tiers": {"free": {"pps": 10}}})");
    EXPECT_EQ(e.field(), "tiers.free.burst");
    EXPECT_EQ(e.reason(), "must be at least 1 packet when pps is set");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "pps": 5}])")).field(), "rules[0].burst");
    EXPECT_EQ(
        error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "tiers": {"free": {"bytes_per_sec": "1M"}}}])"))
            .field(),
        "rules[0].tiers.free.burst_bytes");
    EXPECT_EQ(error_of(with_tier(R"("global": {"pps": 2000000000, "burst": 1})")).field(), "global.pps");
}

TEST(ConfigErrors, CidrsNameTheListEntry) {
    auto e = error_of(with_tier(R"("allow": ["10.0.0.0/8", "10.0.0.300/32"])"));
    EXPECT_EQ(e.field(), "allow[1]");
    EXPECT_EQ(e.reason(), "'10.0.0.300' is not an IPv4 or IPv6 address");
    e = error_of(with_tier(R"("deny": ["10.0.0.1/8"])"));
    EXPECT_EQ(e.field(), "deny[0]");
    EXPECT_EQ(e.reason(), "'10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?");
    e = error_of(R"({"tiers": {"free": {"members": ["192.0.2.0/33"]}}})");
    EXPECT_EQ(e.field(), "tiers.free.members[0]");
    EXPECT_EQ(e.reason(), "prefix length /33 exceeds /32");
    EXPECT_EQ(error_of(with_tier(R"("allow": [7])")).field(), "allow[0]");
    e = error_of(R"({"tiers": {"free": {"members": ["2001:db8::/112", "2001:db8::1/128"]}}})");
    EXPECT_EQ(e.field(), "tiers.free.members[1]");
    EXPECT_TRUE(e.reason().starts_with("IPv6 prefixes longer than /112 are not supported")) << e.reason();
}

TEST(ConfigErrors, PrefixInTwoTiers) {
    const auto e = error_of(R"({"tiers": {"a": {"members": ["10.1.0.0/16"]}, "b": {"members": ["10.1.0.0/16"]}}})");
    EXPECT_EQ(e.field(), "tiers.b.members[0]");
    EXPECT_EQ(e.reason(), "10.1.0.0/16 is already a member of tier 'a'");
}

TEST(ConfigErrors, Durations) {
    auto e = error_of(R"({"tiers": {"free": {"autoban": {"drops": 10, "window": "10 s"}}}})");
    EXPECT_EQ(e.field(), "tiers.free.autoban.window");
    EXPECT_TRUE(e.reason().starts_with("'10 s' is not a duration")) << e.reason();
    e = error_of(R"({"tiers": {"free": {"autoban": {"drops": 10, "ban": "0s"}}}})");
    EXPECT_EQ(e.field(), "tiers.free.autoban.ban");
    EXPECT_EQ(e.reason(), "must be longer than zero");
    e = error_of(R"({"tiers": {"free": {"autoban": {"drops": 10, "ban": 60}}}})");
    EXPECT_EQ(e.field(), "tiers.free.autoban.ban");
    EXPECT_EQ(e.reason(), "expected a duration string such as \"10s\"");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"autoban": {"window": "1s"}}}})").field(), "tiers.free.autoban.drops");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"autoban": {"drops": 0}}}})").field(), "tiers.free.autoban.drops");
}

TEST(ConfigErrors, Interfaces) {
    auto e = error_of(with_tier(R"("interfaces": ["eth0", {"name": "eth1", "mode": "offload"}])"));
    EXPECT_EQ(e.field(), "interfaces[1].mode");
    EXPECT_EQ(e.reason(), "'offload' is not a mode (native, generic or auto)");
    e = error_of(with_tier(R"("interfaces": ["eth0", "eth1", "eth0"])"));
    EXPECT_EQ(e.field(), "interfaces[2]");
    EXPECT_EQ(e.reason(), "duplicate interface 'eth0'");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": ["eth0", {"name": "eth0", "mode": "generic"}])")).field(),
              "interfaces[1].name");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": ["a-name-of-16-chr"])")).field(), "interfaces[0]");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": ["a-name-of-15-ch"])")).field(), "<accepted>");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": [""])")).field(), "interfaces[0]");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": ["eth 0"])")).field(), "interfaces[0]");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": ["a/b"])")).field(), "interfaces[0]");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": [".."])")).field(), "interfaces[0]");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": [{"mode": "native"}])")).field(), "interfaces[0].name");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": [3])")).field(), "interfaces[0]");
    EXPECT_EQ(error_of(with_tier(R"("interfaces": "eth0")")).field(), "interfaces");
}

TEST(ConfigErrors, DaemonSettings) {
    auto e = error_of(with_tier(R"("daemon": {"pin_dir": "sys/fs/bpf/x"})"));
    EXPECT_EQ(e.field(), "daemon.pin_dir");
    EXPECT_EQ(e.reason(), "must be an absolute path");
    EXPECT_EQ(error_of(with_tier(R"("daemon": {"state_dir": ""})")).field(), "daemon.state_dir");
    EXPECT_EQ(error_of(with_tier(R"("daemon": {"socket": "/)" + std::string(107, 'x') + R"("})")).field(),
              "daemon.socket");
    e = error_of(with_tier(R"("daemon": {"log_level": "verbose"})"));
    EXPECT_EQ(e.field(), "daemon.log_level");
    EXPECT_EQ(e.reason(), "'verbose' is not a level (trace, debug, info, warn or error)");
}

TEST(ConfigErrors, Rules) {
    auto e = error_of(with_tier(R"("rules": [{"name": "icmp", "proto": "other", "ports": 0}])"));
    EXPECT_EQ(e.field(), "rules[0].ports");
    EXPECT_TRUE(e.reason().starts_with("not allowed with proto \"other\"")) << e.reason();
    e = error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "ports": "9000-8000"}])"));
    EXPECT_EQ(e.field(), "rules[0].ports");
    EXPECT_EQ(e.reason(), "'9000-8000': first port above last port");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "ports": "80-"}])")).field(),
              "rules[0].ports");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "ports": 65536}])")).field(),
              "rules[0].ports");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "ports": "http"}])")).field(),
              "rules[0].ports");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp", "ports": [80]}])")).field(),
              "rules[0].ports");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "sctp"}])")).field(), "rules[0].proto");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a"}])")).field(), "rules[0].proto");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"proto": "tcp"}])")).field(), "rules[0].name");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "", "proto": "tcp"}])")).field(), "rules[0].name");
    e = error_of(with_tier(R"("rules": [{"name": "a", "proto": "tcp"}, {"name": "a", "proto": "udp"}])"));
    EXPECT_EQ(e.field(), "rules[1].name");
    EXPECT_EQ(e.reason(), "duplicate rule name 'a'");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "udp", "syn_only": true}])")).field(),
              "rules[0].syn_only");
    EXPECT_EQ(error_of(with_tier(R"("rules": [{"name": "a", "proto": "udp", "syn_only": false}])")).field(),
              "<accepted>");
}

TEST(ConfigErrors, PolicyCompilerErrorsKeepTheirField) {
    auto e = error_of(with_tier(R"("rules": [{"name": "ssh", "proto": "tcp", "tiers": {"gold": {"pps": 1, "burst": 1}}}])"));
    EXPECT_EQ(e.field(), "rules.ssh.tier_limits.gold");
    EXPECT_EQ(e.reason(), "no such tier");
    EXPECT_STREQ(e.what(), "t.json: rules.ssh.tier_limits.gold: no such tier");
    e = error_of(with_tier(R"("default_tier": "gold")"));
    EXPECT_EQ(e.field(), "default_tier");
    EXPECT_EQ(e.reason(), "no tier named 'gold'");

    std::string tiers;
    for (int i = 0; i < 17; ++i)
        tiers += (i ? ", " : "") + std::string("\"t") + std::to_string(i) + "\": {}";
    e = error_of("{\"tiers\": {" + tiers + "}}");
    EXPECT_EQ(e.field(), "tiers");
    EXPECT_EQ(e.reason(), "at most 16 tiers");

    std::string rules;
    for (int i = 0; i < 16; ++i)
        rules += (i ? ", " : "") + std::string(R"({"name": "r)") + std::to_string(i) + R"(", "proto": "tcp"})";
    e = error_of(with_tier("\"rules\": [" + rules + "]"));
    EXPECT_EQ(e.field(), "rules");
    EXPECT_EQ(e.reason(), "at most 15 rules");
}

TEST(ConfigErrors, ClassMapMustHoldTwoPolicySlots) {
    EXPECT_EQ(error_of(with_tier(R"("maps": {"classes": 16}, "allow": ["10.0.0.0/24", "10.0.1.0/24"])")).field(),
              "<accepted>");
    std::string allow;
    for (int i = 0; i < 9; ++i)
        allow += (i ? ", " : "") + std::string("\"10.0.") + std::to_string(i) + ".0/24\"";
    const auto e = error_of(with_tier(R"("maps": {"classes": 16}, "allow": [)" + allow + "]"));
    EXPECT_EQ(e.field(), "maps.classes");
}

TEST(ConfigErrors, SyntaxErrorsGiveLineAndColumn) {
    auto e = error_of("{\n  \"tiers\": {\n    \"free\": {\"pps\": ,}\n  }\n}");
    EXPECT_EQ(e.field(), "line 3, column 21");
    EXPECT_TRUE(e.reason().starts_with("syntax error while parsing value")) << e.reason();
    EXPECT_EQ(e.reason().find("json.exception"), std::string::npos) << e.reason();
    e = error_of("{\"tiers\": {}");
    EXPECT_EQ(e.field(), "line 1, column 13") << "end of input: one past the last character";
    e = error_of("{\"tiers\": {\"a\": {}},\n}");  // trailing comma
    EXPECT_EQ(e.field(), "line 2, column 1");
    e = error_of("{\"tiers\": \"a\nb\"}");  // raw newline inside a string
    EXPECT_EQ(e.field(), "line 1, column 13");
    e = error_of("");
    EXPECT_EQ(e.field(), "line 1, column 1");
}

TEST(ConfigDuration, ParsesUnits) {
    EXPECT_EQ(parse_duration_ns("250ms"), 250'000'000ULL);
    EXPECT_EQ(parse_duration_ns("10s"), 10'000'000'000ULL);
    EXPECT_EQ(parse_duration_ns("5m"), 300'000'000'000ULL);
    EXPECT_EQ(parse_duration_ns("2h"), 7'200'000'000'000ULL);
    EXPECT_EQ(parse_duration_ns("1d"), 86'400'000'000'000ULL);
    EXPECT_EQ(parse_duration_ns("0s"), 0ULL) << "zero parses; callers decide if it is allowed";
    EXPECT_EQ(parse_duration_ns("213503d"), 213503ULL * 86'400'000'000'000ULL);  // just below 2^64 ns
}

TEST(ConfigDuration, RejectsBadInput) {
    for (const char* bad : {"", "s", "10", "-1s", "+1s", " 1s", "1s ", "1.5s", "10sec", "1S", "1ms2", "10us", "0x10s",
                            "213504d", "18446744073709551615ms", "99999999999999999999s"})
        EXPECT_EQ(parse_duration_ns(bad), std::nullopt) << '"' << bad << '"';
}

TEST(ConfigQuantity, ParsesDecimalSuffixes) {
    EXPECT_EQ(parse_quantity("0"), 0ULL);
    EXPECT_EQ(parse_quantity("1500"), 1500ULL);
    EXPECT_EQ(parse_quantity("64k"), 64'000ULL);
    EXPECT_EQ(parse_quantity("64K"), 64'000ULL);
    EXPECT_EQ(parse_quantity("10M"), 10'000'000ULL);
    EXPECT_EQ(parse_quantity("1G"), 1'000'000'000ULL);
    EXPECT_EQ(parse_quantity("2T"), 2'000'000'000'000ULL);
    EXPECT_EQ(parse_quantity("10MB"), 10'000'000ULL);
    EXPECT_EQ(parse_quantity("64kb"), 64'000ULL);
    EXPECT_EQ(parse_quantity("1500B"), 1500ULL);
    EXPECT_EQ(parse_quantity("18446744073709551615"), 18446744073709551615ULL);
    EXPECT_EQ(parse_quantity("18446744T"), 18'446'744'000'000'000'000ULL);
}

TEST(ConfigQuantity, RejectsBadInputAndOverflow) {
    for (const char* bad : {"", "k", "B", "-1", "+1", " 1", "1 ", "1.5k", "10m", "1KiB", "1kBB", "1x", "0x10",
                            "18446744073709551616", "18446745T", "99999999999999999999k"})
        EXPECT_EQ(parse_quantity(bad), std::nullopt) << '"' << bad << '"';
}

namespace rlgate::config {
namespace {

TEST(ConfigParse, EscalationAndBanSettings) {
    const auto cfg = parse_config(
        R"({"tiers": {"free": {"pps": 10, "burst": 20,
              "autoban": {"drops": 100, "ban": "1m", "repeat_factor": 5, "max_ban": "2h", "memory": "7d"}}},
            "daemon": {"escalation_socket": "/run/x/esc.sock", "escalation_group": "rlgate-l7"},
            "bans": {"l7_default_ttl": "5m", "l7_max_ttl": "2h", "l7_reports_per_sec": 3, "l7_burst": 9,
                     "violation_log": {"format": "json", "path": "/var/log/rlgate/violations.jsonl"}, "history": 500}})",
        "t.json");
    const auto& a = cfg.policy.tiers[0].autoban;
    EXPECT_EQ(a.repeat_factor, 5U);
    EXPECT_EQ(a.max_ban_ns, 7'200'000'000'000ULL);
    EXPECT_EQ(a.memory_ns, 7ULL * 86'400'000'000'000ULL);
    EXPECT_EQ(cfg.daemon.escalation_socket, "/run/x/esc.sock");
    EXPECT_EQ(cfg.daemon.escalation_group, "rlgate-l7");
    EXPECT_EQ(cfg.bans.l7_default_ttl_ns, 300'000'000'000ULL);
    EXPECT_EQ(cfg.bans.l7_reports_per_sec, 3U);
    EXPECT_EQ(cfg.bans.l7_burst, 9U);
    EXPECT_EQ(cfg.bans.violation_log_format, "json");
    EXPECT_EQ(cfg.bans.violation_log_path, "/var/log/rlgate/violations.jsonl");
    EXPECT_EQ(cfg.bans.history_max, 500U);
    const auto defaults = parse_config(with_tier(), "t.json");
    EXPECT_EQ(defaults.policy.tiers[0].autoban.repeat_factor, 10U);
    EXPECT_EQ(defaults.bans.violation_log_format, "text");
}

TEST(ConfigErrors, EscalationAndBanSettings) {
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"autoban": {"drops": 1, "ban": "1h", "max_ban": "1m"}}}})").field(),
              "tiers.free.autoban.max_ban");
    EXPECT_EQ(error_of(R"({"tiers": {"free": {"autoban": {"drops": 1, "repeat_factor": 0}}}})").field(),
              "tiers.free.autoban.repeat_factor");
    EXPECT_EQ(error_of(with_tier(R"("bans": {"violation_log": {"format": "xml"}})")).field(), "bans.violation_log.format");
    EXPECT_EQ(error_of(with_tier(R"("bans": {"l7_default_ttl": "2h", "l7_max_ttl": "1h"})")).field(), "bans.l7_default_ttl");
    EXPECT_EQ(error_of(with_tier(R"("bans": {"l7_burst": 0})")).field(), "bans.l7_burst");
    EXPECT_EQ(error_of(with_tier(R"("bans": {"violation_log": {"path": "relative.log"}})")).field(),
              "bans.violation_log.path");
    EXPECT_EQ(error_of(with_tier(R"("bans": {"ttl": "1m"})")).field(), "bans.ttl");
}

}  // namespace
}  // namespace rlgate::config
