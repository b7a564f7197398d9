// SPDX-License-Identifier: BSD-2-Clause
// The real XDP program (bpf/rlgate.bpf.c, loaded through the dataplane
// library) on fuzzed frames, run with BPF_PROG_TEST_RUN, every verdict and
// every counter checked against a reference classifier written here from the
// documentation (docs/architecture.md "Per packet", docs/config.md "Verdict
// order", "allow, deny", "rules"), not from bpf/parse.h.
//
// Three programs are loaded, each with the same fixed policy but for its
// flags: drop_malformed off, drop_malformed on, and dry-run with
// drop_malformed on. The limits are far beyond what a fuzzing run can send,
// so the verdict is a function of the frame alone: non-IP, malformed, allow,
// deny, or within_limit with the tier of the source and the L4 rule of the
// destination port. Checked for every frame and program: the XDP action; the
// one interface counter (reason x verdict) that moved, by one packet and the
// frame's length in bytes; the tier x rule x reason x verdict counter.
//
// Input: byte 0 is a control byte, the rest is the Ethernet frame (at most
// kMaxFrame bytes are used; BPF_PROG_TEST_RUN refuses frames shorter than an
// Ethernet header, so those are skipped). Control bit 0 set: before the run,
// the IP header's length field (IPv4 total length, IPv6 payload length) is set
// to what the frame holds, so that mutations which grow or shrink a frame
// still reach the extension headers and L4. Seeds: tests/fuzz/corpus/xdp_parser,
// written by xdp_parser_seeds.cpp.
//
// Needs root (CAP_BPF + CAP_NET_ADMIN). A mismatch prints the frame, both
// answers and how the reference parsed the frame, then aborts, so libFuzzer
// keeps the input. RLGATE_FUZZ_TRACE=1 prints the reference's answer for every
// input (e.g. fuzz_xdp_parser tests/fuzz/corpus/xdp_parser/*).
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/net/ip_address.hpp"
#include "core/policy/policy.hpp"
#include "dataplane/dataplane.hpp"
#include "rlgate/abi.h"

namespace {

using Frame = std::span<const std::uint8_t>;

// Frames of up to this length stay in the linear part of the test run's
// buffer (a page less XDP headroom and skb_shared_info: 3520 bytes on x86-64).
constexpr std::size_t kMaxFrame = 3072;
constexpr std::size_t kEthHeader = 14;

std::uint16_t be16(Frame b, std::size_t at) {
    return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]);
}

// ---------------------------------------------------------------------------
// The policy, as data both sides use: the program gets it compiled through
// core/policy, the reference reads it directly.

enum class Listed { allow, deny, tier1 };
struct ListedPrefix {
    const char* cidr;
    Listed what;
};
// Tier ids: 0 "default" (sources in no member prefix), 1 "t1".
constexpr ListedPrefix kPrefixes[] = {
    {"192.0.2.0/24", Listed::allow},
    {"2001:db8:a::/48", Listed::allow},
    {"192.0.2.66/32", Listed::deny},      // inside an allow prefix: allow wins
    {"2001:db8:a:1::/64", Listed::deny},  // same for IPv6
    {"198.51.100.7/32", Listed::deny},
    {"2001:db8:d::/48", Listed::deny},
    {"203.0.113.0/24", Listed::tier1},
    {"2001:db8:b::/48", Listed::tier1},
    {"203.0.113.99/32", Listed::deny},    // a denied member of t1
    {"2001:db8:b:9::/64", Listed::deny},
    {"10.0.0.0/8", Listed::tier1},
    {"10.1.0.0/16", Listed::allow},
};

enum class Proto { tcp, udp, other };
struct RuleSpec {
    const char* name;
    Proto proto;
    std::uint16_t first, last;
    bool syn_only;
};
// Rule ids 1.. in this order; first match wins (docs/config.md, "rules").
constexpr RuleSpec kRules[] = {
    {"dns", Proto::udp, 53, 53, false},
    {"ssh-syn", Proto::tcp, 22, 22, true},
    {"web", Proto::tcp, 80, 443, false},
    {"other", Proto::other, 0, 0, false},
    {"traceroute", Proto::udp, 33434, 33534, false},
    {"all-tcp-syn", Proto::tcp, 0, 65535, true},
};

rlgate::policy::Policy fuzz_policy(bool drop_malformed, bool dry_run) {
    using namespace rlgate;
    policy::Policy p;
    // Limits nothing a fuzzing run can reach, on every path of the bucket code:
    // a byte limit (default tier), a packet limit (t1, rules) and the global limit.
    const policy::RateLimit huge_pps{.packets_per_sec = 1'000'000'000, .burst_packets = 1'000'000'000};
    p.tiers.push_back({.name = "default",
                       .limit = {.bytes_per_sec = 1'000'000'000'000ULL, .burst_bytes = 1'000'000'000'000ULL}});
    p.tiers.push_back({.name = "t1", .limit = huge_pps, .prefix_v4 = 24, .prefix_v6 = 48});
    p.default_tier = "default";
    for (const auto& lp : kPrefixes) {
        const auto c = *net::Cidr::parse(lp.cidr);
        switch (lp.what) {
        case Listed::allow: p.allow.push_back(c); break;
        case Listed::deny: p.deny.push_back(c); break;
        case Listed::tier1: p.members.push_back({c, "t1"}); break;
        }
    }
    for (const auto& r : kRules) {
        policy::Rule rule;
        rule.name = r.name;
        rule.protocol = r.proto == Proto::tcp ? policy::RuleProtocol::tcp
                        : r.proto == Proto::udp ? policy::RuleProtocol::udp
                                                : policy::RuleProtocol::other;
        if (r.proto != Proto::other) {
            rule.port_first = r.first;
            rule.port_last = r.last;
        }
        rule.syn_only = r.syn_only;
        rule.limit = huge_pps;
        p.rules.push_back(rule);
    }
    p.global = huge_pps;
    p.drop_malformed = drop_malformed;
    p.dry_run = dry_run;
    return p;
}

// ---------------------------------------------------------------------------
// Reference classifier, from docs/architecture.md "Per packet":
//   Ethernet, up to two VLAN tags (802.1Q/802.1ad), IPv4 with options and
//   fragments, IPv6 with a walk over at most 6 extension headers (hop-by-hop,
//   routing, fragment, destination options, AH), then TCP/UDP/ICMP/ICMPv6.
//   Every length is checked against the frame *and* against what the IP header
//   claims, so Ethernet padding is never parsed as a header. Non-first
//   fragments have no ports (L4 class "other"). Non-IP frames (ARP, LLDP, a
//   third VLAN tag) pass [...]. Truncated or inconsistent frames are malformed.

namespace ref {

constexpr int kMaxVlanTags = 2;
constexpr int kMaxIpv6ExtHeaders = 6;

enum class Outcome { ok, non_ip, malformed };

struct Packet {
    Outcome outcome = Outcome::malformed;
    bool v6 = false;
    std::array<std::uint8_t, 16> src{};  // IPv4: the 4 bytes first
    std::uint8_t l4class = RL_L4_OTHER;
    std::uint16_t dport = 0;
    std::string how;  // how the parse ended, for a mismatch report
};

Packet done(Packet p, Outcome o, std::string how) {
    p.outcome = o;
    p.how = std::move(how);
    return p;
}

// `d`: the L4 part of the datagram, as long as the IP header says (not the frame).
Packet parse_l4(Packet p, Frame d, std::uint8_t proto) {
    switch (proto) {
    case 6: {  // TCP: 20-byte header, data offset 5..15 words within the segment
        if (d.size() < 20)
            return done(p, Outcome::malformed, "TCP header truncated (" + std::to_string(d.size()) + " bytes)");
        const std::size_t data_offset = (d[12] >> 4) * 4U;
        if (data_offset < 20)
            return done(p, Outcome::malformed, "TCP data offset below 20");
        if (data_offset > d.size())
            return done(p, Outcome::malformed, "TCP data offset beyond the segment");
        const bool syn = d[13] & 0x02, ack = d[13] & 0x10;
        p.l4class = syn && !ack ? RL_L4_TCP_SYN : RL_L4_TCP;
        p.dport = be16(d, 2);
        return done(p, Outcome::ok, syn && !ack ? "TCP SYN" : "TCP");
    }
    case 17: {  // UDP: 8-byte header, length field 8..segment
        if (d.size() < 8)
            return done(p, Outcome::malformed, "UDP header truncated");
        const std::size_t len = be16(d, 4);
        if (len < 8 || len > d.size())
            return done(p, Outcome::malformed, "UDP length " + std::to_string(len) + " outside 8.." +
                                                   std::to_string(d.size()));
        p.l4class = RL_L4_UDP;
        p.dport = be16(d, 2);
        return done(p, Outcome::ok, "UDP");
    }
    default:
        break;
    }
    // ICMP: type, code, checksum, 4 bytes rest-of-header. Either ICMP in
    // either family: bpf/parse.h checks "ICMP/ICMPv6" without regard to the IP
    // version (so a short IPv6 packet with next header 1 is malformed, not
    // "other"); the docs name both and do not say, and it changes nothing real.
    if ((proto == 1 || proto == 58) && d.size() < 8)
        return done(p, Outcome::malformed, "ICMP header truncated");
    p.l4class = RL_L4_OTHER;
    p.dport = 0;
    return done(p, Outcome::ok, "protocol " + std::to_string(proto) + " (class other)");
}

Packet parse_ipv4(Packet p, Frame l3) {
    if (l3.size() < 20)
        return done(p, Outcome::malformed, "IPv4 header truncated");
    if (l3[0] >> 4 != 4)
        return done(p, Outcome::malformed, "IPv4 version field not 4");
    const std::size_t header = (l3[0] & 0x0f) * 4U;
    const std::size_t total = be16(l3, 2);
    if (header < 20)
        return done(p, Outcome::malformed, "IPv4 IHL below 5");
    if (total < header)
        return done(p, Outcome::malformed, "IPv4 total length below the header length");
    if (total > l3.size())
        return done(p, Outcome::malformed, "IPv4 datagram beyond the frame");
    p.v6 = false;
    std::memcpy(p.src.data(), &l3[12], 4);
    const unsigned fragment_offset = be16(l3, 6) & 0x1fff;
    if (fragment_offset != 0) {
        p.l4class = RL_L4_OTHER;
        p.dport = 0;
        return done(p, Outcome::ok, "IPv4 non-first fragment (class other)");
    }
    return parse_l4(p, l3.subspan(header, total - header), l3[9]);
}

bool is_ipv6_extension(std::uint8_t h) { return h == 0 || h == 43 || h == 44 || h == 60 || h == 51; }

Packet parse_ipv6(Packet p, Frame l3) {
    if (l3.size() < 40)
        return done(p, Outcome::malformed, "IPv6 header truncated");
    if (l3[0] >> 4 != 6)
        return done(p, Outcome::malformed, "IPv6 version field not 6");
    const std::size_t payload_len = be16(l3, 4);
    if (40 + payload_len > l3.size())
        return done(p, Outcome::malformed, "IPv6 payload beyond the frame");
    p.v6 = true;
    std::memcpy(p.src.data(), &l3[8], 16);
    const Frame payload = l3.subspan(40, payload_len);
    std::uint8_t next = l3[6];
    std::size_t at = 0;
    for (int walked = 0;; ++walked) {
        if (!is_ipv6_extension(next))
            return parse_l4(p, payload.subspan(at), next);
        if (walked == kMaxIpv6ExtHeaders)
            return done(p, Outcome::malformed, "more than 6 IPv6 extension headers");
        const std::size_t left = payload.size() - at;
        if (next == 44) {  // fragment header: 8 bytes, offset in the upper 13 bits of bytes 2-3
            if (left < 8)
                return done(p, Outcome::malformed, "IPv6 fragment header truncated");
            if (be16(payload, at + 2) >> 3 != 0) {
                p.l4class = RL_L4_OTHER;
                p.dport = 0;
                return done(p, Outcome::ok, "IPv6 non-first fragment (class other)");
            }
            next = payload[at];
            at += 8;
            continue;
        }
        if (left < 2)
            return done(p, Outcome::malformed, "IPv6 extension header truncated");
        // RFC 8200 4.3-4.6: (Hdr Ext Len + 1) * 8 bytes; RFC 4302 2.2 (AH): (Payload Len + 2) * 4.
        const std::size_t len = next == 51 ? (payload[at + 1] + 2U) * 4U : (payload[at + 1] + 1U) * 8U;
        if (len > left)
            return done(p, Outcome::malformed, "IPv6 extension header beyond the payload");
        next = payload[at];
        at += len;
    }
}

Packet parse(Frame f) {
    Packet p;
    if (f.size() < kEthHeader)
        return done(p, Outcome::malformed, "Ethernet header truncated");
    std::uint16_t type = be16(f, 12);
    std::size_t at = kEthHeader;
    for (int tags = 0; type == 0x8100 || type == 0x88a8; ++tags) {
        if (tags == kMaxVlanTags)
            return done(p, Outcome::non_ip, "third VLAN tag");
        if (f.size() < at + 4)
            return done(p, Outcome::malformed, "VLAN tag truncated");
        type = be16(f, at + 2);
        at += 4;
    }
    if (type == 0x0800)
        return parse_ipv4(p, f.subspan(at));
    if (type == 0x86dd)
        return parse_ipv6(p, f.subspan(at));
    char buf[48];
    std::snprintf(buf, sizeof buf, "EtherType 0x%04x", type);
    return done(p, Outcome::non_ip, buf);
}

// A prefix of the policy, in its own family.
struct Prefix {
    bool v6;
    std::array<std::uint8_t, 16> bytes{};
    unsigned bits;
    Listed what;
};

std::vector<Prefix> policy_prefixes() {
    std::vector<Prefix> out;
    for (const auto& lp : kPrefixes) {
        std::string text = lp.cidr;
        const auto slash = text.find('/');
        Prefix p{.v6 = text.find(':') != std::string::npos, .bytes = {},
                 .bits = static_cast<unsigned>(std::stoul(text.substr(slash + 1))), .what = lp.what};
        text.resize(slash);
        if (inet_pton(p.v6 ? AF_INET6 : AF_INET, text.c_str(), p.bytes.data()) != 1)
            std::abort();
        out.push_back(p);
    }
    return out;
}

// Families never mix: an IPv4 prefix holds IPv4 sources, an IPv6 prefix IPv6
// sources (net::Cidr::contains reads it so too). The program looks both up in
// one trie of IPv4-mapped keys, so an IPv6 packet from ::ffff:a.b.c.d gets the
// IPv4 lists' verdict (and an IPv6 prefix covering ::ffff:0:0/96, e.g. ::/0,
// would catch IPv4 sources): known and open. The policy above has no such
// prefix; a mismatch on an IPv6 source in ::ffff:0:0/96 is that divergence.
bool contains(const Prefix& pre, const Packet& p) {
    if (pre.v6 != p.v6)
        return false;
    for (unsigned bit = 0; bit < pre.bits; ++bit) {
        const unsigned byte = bit / 8, mask = 0x80U >> (bit % 8);
        if ((pre.bytes[byte] & mask) != (p.src[byte] & mask))
            return false;
    }
    return true;
}

enum class SourceClass { allow, deny, tier };
struct Classified {
    SourceClass cls;
    std::uint32_t tier;
};

// docs/config.md, "allow, deny": a source inside any allow prefix passes, even
// when a more specific deny or member prefix covers it; inside a deny prefix
// (and no allow prefix): dropped. Otherwise the most specific member prefix
// gives the tier (docs/architecture.md: "allow, then deny, then the most
// specific tier"), the default tier when none does.
Classified classify(const Packet& p) {
    static const std::vector<Prefix> prefixes = policy_prefixes();
    bool allowed = false, denied = false;
    int tier_bits = -1;
    std::uint32_t tier = 0;
    for (const auto& pre : prefixes) {
        if (!contains(pre, p))
            continue;
        allowed |= pre.what == Listed::allow;
        denied |= pre.what == Listed::deny;
        if (pre.what == Listed::tier1 && static_cast<int>(pre.bits) > tier_bits) {
            tier_bits = static_cast<int>(pre.bits);
            tier = 1;
        }
    }
    if (allowed)
        return {SourceClass::allow, 0};
    if (denied)
        return {SourceClass::deny, 0};
    return {SourceClass::tier, tier};
}

// docs/config.md, "rules": first match wins; `other` is ICMP, ICMPv6, other IP
// protocols and non-first fragments; `syn_only` matches SYN without ACK.
std::uint32_t rule_of(const Packet& p) {
    for (std::size_t i = 0; i < std::size(kRules); ++i) {
        const auto& r = kRules[i];
        bool match = false;
        switch (r.proto) {
        case Proto::tcp:
            match = (p.l4class == RL_L4_TCP_SYN || (p.l4class == RL_L4_TCP && !r.syn_only)) && p.dport >= r.first &&
                    p.dport <= r.last;
            break;
        case Proto::udp: match = p.l4class == RL_L4_UDP && p.dport >= r.first && p.dport <= r.last; break;
        case Proto::other: match = p.l4class == RL_L4_OTHER; break;
        }
        if (match)
            return static_cast<std::uint32_t>(i + 1);
    }
    return 0;
}

}  // namespace ref

// ---------------------------------------------------------------------------

struct Verdict {
    std::uint32_t action = XDP_PASS;  // XDP_PASS or XDP_DROP
    std::uint32_t reason = 0;
    std::uint32_t counted = RL_VERDICT_PASS;  // verdict index of the counters
    std::uint32_t tier = RL_STATS_TIER_NONE;
    std::uint32_t rule = 0;
};

struct ProgramFlags {
    const char* name;
    bool drop_malformed;
    bool dry_run;
};

// docs/config.md, "Verdict order", and docs/architecture.md item 8: in
// dry-run every drop verdict passes, counted as a pass with its drop reason.
// (docs/config.md says the opposite for malformed frames, "Step 2 still drops
// with drop_malformed"; the program, tests/bpf/parser_test.cpp
// DryRunPassesMalformedFramesItWouldDrop and architecture.md pass them.)
Verdict expect(const ref::Packet& p, const ProgramFlags& flags) {
    Verdict v;
    auto drop = [&](std::uint32_t reason) {
        v.reason = reason;
        v.action = flags.dry_run ? XDP_PASS : XDP_DROP;
        v.counted = flags.dry_run ? RL_VERDICT_PASS : RL_VERDICT_DROP;
        return v;
    };
    if (p.outcome == ref::Outcome::non_ip) {
        v.reason = RL_REASON_NON_IP;
        return v;
    }
    if (p.outcome == ref::Outcome::malformed) {
        if (flags.drop_malformed)
            return drop(RL_REASON_MALFORMED);
        v.reason = RL_REASON_MALFORMED;
        return v;
    }
    const auto c = ref::classify(p);
    if (c.cls == ref::SourceClass::allow) {
        v.reason = RL_REASON_ALLOW;
        return v;
    }
    if (c.cls == ref::SourceClass::deny)
        return drop(RL_REASON_DENY);
    v.reason = RL_REASON_WITHIN_LIMIT;
    v.tier = c.tier;
    v.rule = ref::rule_of(p);
    return v;
}

const char* reason_name(std::uint32_t r) {
    static const char* const names[] = {"within_limit", "allow", "non_ip", "malformed", "deny",
                                        "ban", "rate", "global", "map_full"};
    return r < std::size(names) ? names[r] : "?";
}
const char* action_name(std::uint32_t a) {
    return a == XDP_PASS ? "XDP_PASS" : a == XDP_DROP ? "XDP_DROP" : a == XDP_ABORTED ? "XDP_ABORTED" : "XDP_?";
}
std::string tier_name(std::uint32_t t) { return t == RL_STATS_TIER_NONE ? "none" : std::to_string(t); }

// One loaded program with its policy, and what its counters held after the
// last frame (a fresh program's counters are zero).
class Program {
public:
    explicit Program(const ProgramFlags& flags) : flags_(flags) {
        rlgate::DataplaneOptions o;
        o.bucket_entries = 65536;  // a full set evicts, never refuses
        o.class_entries = 256;
        o.ban_entries = 16;
        dp_ = std::make_unique<rlgate::Dataplane>(o);
        dp_->apply_policy(rlgate::policy::compile(fuzz_policy(flags.drop_malformed, flags.dry_run)));
        ncpu_ = libbpf_num_possible_cpus();
        if (ncpu_ <= 0)
            throw std::runtime_error("libbpf_num_possible_cpus failed");
        stats_fd_ = dp_->map_fd("rl_stats");
        if_stats_fd_ = dp_->map_fd("rl_if_stats");
        stats_mirror_.assign(RL_STATS_ENTRIES, rl_counter{});
        // BPF_PROG_TEST_RUN without a context runs on the loopback device's queue.
        const unsigned lo = if_nametoindex("lo");
        if_first_ = rl_if_stats_index(lo ? lo : 1U, 0, 0);
        if_mirror_ = read_if_window();
    }

    const ProgramFlags& flags() const { return flags_; }

    // Runs the frame; returns an empty string when program and reference agree.
    std::string check(Frame frame, const Verdict& want) {
        const std::uint32_t action = dp_->test_run(frame).verdict;
        const auto now = read_if_window();
        std::string problems;
        int moved = 0;
        std::uint32_t got_reason = RL_REASON_MAX, got_counted = RL_VERDICTS;
        std::string moved_text;
        for (std::size_t i = 0; i < now.size(); ++i) {
            const auto dp = now[i].packets - if_mirror_[i].packets;
            const auto db = now[i].bytes - if_mirror_[i].bytes;
            if (!dp && !db)
                continue;
            ++moved;
            got_reason = static_cast<std::uint32_t>(i / RL_VERDICTS);
            got_counted = static_cast<std::uint32_t>(i % RL_VERDICTS);
            moved_text += std::string(moved > 1 ? ", " : "") + reason_name(got_reason) + "/" +
                          (got_counted == RL_VERDICT_DROP ? "drop" : "pass") + " +" + std::to_string(dp) + " packets +" +
                          std::to_string(db) + " bytes";
            if (dp != 1 || db != frame.size())
                problems += "interface counter moved by other than one packet of " + std::to_string(frame.size()) +
                            " bytes; ";
        }
        if_mirror_ = now;
        if (action != want.action)
            problems += std::string("action ") + action_name(action) + ", expected " + action_name(want.action) + "; ";
        if (moved != 1)
            problems += std::to_string(moved) + " interface counters moved; ";
        else if (got_reason != want.reason || got_counted != want.counted)
            problems += "counted as a different reason or verdict; ";

        const std::uint32_t idx = rl_stats_index(want.tier, want.rule, want.reason, want.counted);
        const rl_counter c = read_stats(idx);
        auto& m = stats_mirror_[idx];
        if (c.packets != m.packets + 1 || c.bytes != m.bytes + frame.size())
            problems += "the tier x rule x reason x verdict counter expected did not move by one packet; ";
        if (problems.empty()) {
            m = c;
            return {};
        }
        return std::string("program: ") + action_name(action) + ", interface counters moved: " +
               (moved_text.empty() ? "none" : moved_text) + "; tier/rule counters moved: " + stats_diff() +
               "\n  problems: " + problems;
    }

private:
    std::vector<rl_counter> read_if_window() const {
        // The RL_REASON_MAX x RL_VERDICTS counters of one interface slot, in one batch.
        std::vector<std::uint32_t> keys(static_cast<std::size_t>(RL_REASON_MAX) * RL_VERDICTS);
        std::vector<rl_counter> per_cpu(keys.size() * static_cast<std::size_t>(ncpu_));
        std::uint32_t count = static_cast<std::uint32_t>(keys.size());
        std::uint32_t in = if_first_ - 1, out = 0;  // the batch starts after `in`
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        const int err = bpf_map_lookup_batch(if_stats_fd_, if_first_ ? &in : nullptr, &out, keys.data(),
                                             per_cpu.data(), &count, &opts);
        if ((err && errno != ENOENT) || count != keys.size() || keys[0] != if_first_) {
            std::fprintf(stderr, "fuzz_xdp_parser: reading rl_if_stats failed (%s)\n", std::strerror(errno));
            std::abort();
        }
        std::vector<rl_counter> sum(keys.size());
        for (std::size_t i = 0; i < keys.size(); ++i)
            for (int cpu = 0; cpu < ncpu_; ++cpu) {
                sum[i].packets += per_cpu[i * static_cast<std::size_t>(ncpu_) + static_cast<std::size_t>(cpu)].packets;
                sum[i].bytes += per_cpu[i * static_cast<std::size_t>(ncpu_) + static_cast<std::size_t>(cpu)].bytes;
            }
        return sum;
    }

    rl_counter read_stats(std::uint32_t idx) const {
        std::vector<rl_counter> per_cpu(static_cast<std::size_t>(ncpu_));
        if (bpf_map_lookup_elem(stats_fd_, &idx, per_cpu.data()) != 0) {
            std::fprintf(stderr, "fuzz_xdp_parser: reading rl_stats failed (%s)\n", std::strerror(errno));
            std::abort();
        }
        rl_counter sum{};
        for (const auto& c : per_cpu) {
            sum.packets += c.packets;
            sum.bytes += c.bytes;
        }
        return sum;
    }

    // Which tier x rule x reason x verdict counters differ from the mirror (for a report).
    std::string stats_diff() const {
        std::string out;
        for (const auto& [k, v] : dp_->read_counters().entries) {
            const auto& m = stats_mirror_[rl_stats_index(k.tier, k.rule, k.reason, k.verdict)];
            if (v.packets != m.packets)
                out += (out.empty() ? "" : ", ") + std::string("tier ") + tier_name(k.tier) + " rule " +
                       std::to_string(k.rule) + " " + reason_name(k.reason) + "/" +
                       (k.verdict == RL_VERDICT_DROP ? "drop" : "pass") + " +" +
                       std::to_string(v.packets - m.packets);
        }
        return out.empty() ? "none" : out;
    }

    ProgramFlags flags_;
    std::unique_ptr<rlgate::Dataplane> dp_;
    int ncpu_ = 0;
    int stats_fd_ = -1, if_stats_fd_ = -1;
    std::uint32_t if_first_ = 0;
    std::vector<rl_counter> if_mirror_;
    std::vector<rl_counter> stats_mirror_;  // indexed like rl_stats
};

std::vector<std::unique_ptr<Program>>& programs() {
    static std::vector<std::unique_ptr<Program>> p;
    return p;
}

// Control bit 0: the IP header's length field set to what the frame holds.
// Finds the IP header the simplest way (Ethernet, at most two VLAN tags); the
// reference then parses the result like any other frame.
void fix_ip_length(std::vector<std::uint8_t>& f) {
    if (f.size() < kEthHeader)
        return;
    std::size_t at = 12;
    for (int tags = 0; tags <= 2; ++tags) {
        const unsigned type = (unsigned{f[at]} << 8) | f[at + 1];
        const std::size_t l3 = at + 2;
        if (type == 0x8100 || type == 0x88a8) {
            if (f.size() < l3 + 4)
                return;
            at += 4;
            continue;
        }
        std::size_t len = 0, field = 0;
        if (type == 0x0800 && f.size() >= l3 + 20) {
            len = f.size() - l3;
            field = l3 + 2;
        } else if (type == 0x86dd && f.size() >= l3 + 40) {
            len = f.size() - l3 - 40;
            field = l3 + 4;
        } else {
            return;
        }
        len = std::min<std::size_t>(len, 0xffff);
        f[field] = static_cast<std::uint8_t>(len >> 8);
        f[field + 1] = static_cast<std::uint8_t>(len);
        return;
    }
}

std::string hex(Frame f) {
    std::string out;
    char buf[16];
    for (std::size_t i = 0; i < f.size(); ++i) {
        if (i % 16 == 0) {
            std::snprintf(buf, sizeof buf, "%s%04zx:", i ? "\n  " : "  ", i);
            out += buf;
        }
        std::snprintf(buf, sizeof buf, " %02x", f[i]);
        out += buf;
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (geteuid() != 0) {
        std::fprintf(stderr,
                     "ERROR: fuzz_xdp_parser loads the XDP program and runs it with BPF_PROG_TEST_RUN, which "
                     "needs root (CAP_BPF + CAP_NET_ADMIN); run it as root, e.g. sudo scripts/fuzz.sh xdp_parser\n");
        std::exit(1);
    }
    spdlog::set_level(spdlog::level::warn);
    try {
        for (const ProgramFlags& f : {ProgramFlags{"drop_malformed=off", false, false},
                                      ProgramFlags{"drop_malformed=on", true, false},
                                      ProgramFlags{"dry_run, drop_malformed=on", true, true}})
            programs().push_back(std::make_unique<Program>(f));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ERROR: fuzz_xdp_parser cannot load the XDP program: %s\n", e.what());
        std::exit(1);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1)
        return 0;
    const bool fix_length = data[0] & 1;
    std::vector<std::uint8_t> frame(data + 1, data + std::min(size, 1 + kMaxFrame));
    if (frame.size() < kEthHeader)
        return 0;  // BPF_PROG_TEST_RUN refuses it (EINVAL)
    if (fix_length)
        fix_ip_length(frame);

    const ref::Packet pkt = ref::parse(frame);
    static const bool trace = std::getenv("RLGATE_FUZZ_TRACE") != nullptr;
    if (trace) {
        const Verdict v = expect(pkt, programs().front()->flags());
        std::fprintf(stderr, "fuzz_xdp_parser: %zu bytes: %s -> %s, tier %s, rule %u\n", frame.size(), pkt.how.c_str(),
                     reason_name(v.reason), tier_name(v.tier).c_str(), v.rule);
    }
    for (auto& prog : programs()) {
        const Verdict want = expect(pkt, prog->flags());
        std::string mismatch;
        try {
            mismatch = prog->check(frame, want);
        } catch (const std::exception& e) {
            mismatch = std::string("the test run failed: ") + e.what();
        }
        if (mismatch.empty())
            continue;
        static const char* const outcome[] = {"ok", "non-IP", "malformed"};
        std::fprintf(stderr,
                     "\nfuzz_xdp_parser: MISMATCH, program with %s\nframe (%zu bytes%s):\n%s\n"
                     "reference: parse %s (%s)%s -> %s, reason %s counted as %s, tier %s, rule %u\n  %s\n",
                     prog->flags().name, frame.size(), fix_length ? ", IP length fixed up" : "", hex(frame).c_str(),
                     outcome[static_cast<int>(pkt.outcome)], pkt.how.c_str(),
                     pkt.outcome == ref::Outcome::ok ? (pkt.v6 ? " IPv6 source" : " IPv4 source") : "",
                     action_name(want.action), reason_name(want.reason),
                     want.counted == RL_VERDICT_DROP ? "drop" : "pass", tier_name(want.tier).c_str(), want.rule,
                     mismatch.c_str());
        std::abort();
    }
    return 0;
}
