// SPDX-License-Identifier: BSD-2-Clause
// Loader library of the XDP dataplane: RAII over the libbpf skeleton. Opens
// and loads the program with map sizes from config, attaches it to
// interfaces through bpf_link, writes policy atomically, reads counters,
// manages bans, consumes ring-buffer events and exposes test runs.
// Used by the tests and benchmarks now, by rlgated later.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/net/ip_address.hpp"
#include "core/policy/policy.hpp"
#include "dataplane/bucket_sets.hpp"
#include "dataplane/unique_fd.hpp"
#include "rlgate/abi.h"

struct rlgate_bpf;  // the generated skeleton
struct ring_buffer;

namespace rlgate {

struct DataplaneOptions {
    std::uint32_t bucket_entries = 1U << 20;  // sources tracked at once (rounded up to whole sets of 4)
    // A source gets its bucket on its second packet within a window, so a spray
    // of spoofed one-packet sources evicts no bucket (rl_seen, abi.h). Costs
    // RL_SEEN_SLOTS_PER_ENTRY bytes per bucket entry, at most RL_SEEN_MAX_SLOTS,
    // allocated whether on or off.
    bool seen_filter = true;
    std::uint32_t class_entries = 65536;      // allow + deny + tier prefixes, both slots
    std::uint32_t ban_entries = 65536;
    std::uint32_t events_per_sec = 100;       // ring-buffer event budget
    std::uint32_t events_burst = 100;
    std::uint32_t drop_samples_per_sec = 10;  // RL_EVENT_DROP samples; 0 = none
    // bpffs directory holding the pinned maps and links (empty = nothing
    // pinned: the program lives and dies with this object). When it already
    // holds maps of a compatible layout they are adopted, with every bucket,
    // ban and counter, and pinned links are switched to the new program.
    std::string pin_dir;
};

enum class AttachMode { native, generic, automatic };
const char* to_string(AttachMode m);

struct TestRunResult {
    std::uint32_t verdict = 0;  // XDP_* action
    std::uint32_t duration_ns = 0;  // mean per repetition, as the kernel reports it
};

struct CounterKey {
    std::uint32_t tier, rule, reason, verdict;
    auto operator<=>(const CounterKey&) const = default;
};

// Per-CPU counters summed over all possible CPUs.
struct Counters {
    std::map<CounterKey, rl_counter> entries;  // non-zero entries only
    std::array<std::uint64_t, RL_HEALTH_MAX> health{};

    [[nodiscard]] std::uint64_t packets(std::uint32_t reason, std::uint32_t verdict) const;
    [[nodiscard]] std::uint64_t packets_where(const std::function<bool(const CounterKey&)>& pred) const;
};

struct BanEntry {
    net::Cidr prefix;
    rl_ban_value value{};
};

struct BucketEntry {
    rl_bucket_key key{};
    rl_bucket value{};
};

struct ClockSample {
    std::uint64_t rl_now_ns = 0;
    std::uint64_t mono_ns = 0;
    std::uint64_t ns_per_jiffy = 0;
};

class Dataplane {
public:
    explicit Dataplane(const DataplaneOptions& options = {});
    ~Dataplane();
    Dataplane(const Dataplane&) = delete;
    Dataplane& operator=(const Dataplane&) = delete;

    // Attach to an interface; returns the mode in effect. Native fails loudly
    // when the driver lacks it; automatic falls back to generic with a warning.
    // With a pin_dir the link is pinned: it outlives this process.
    AttachMode attach(const std::string& ifname, AttachMode mode);
    void detach(const std::string& ifname);
    [[nodiscard]] std::map<std::string, AttachMode> attachments() const;
    // False when the link of `ifname` no longer reaches an interface (deleted, moved).
    [[nodiscard]] bool link_alive(const std::string& ifname) const;

    // True when the maps were adopted from pin_dir rather than created.
    [[nodiscard]] bool adopted() const { return adopted_; }
    // True when this map in particular was adopted (a pin can go missing alone).
    [[nodiscard]] bool map_adopted(const std::string& name) const { return adopted_maps_.contains(name); }
    // Detaches every link and removes every pin under pin_dir (the maps go
    // away with the last reference): what `rlgated --cleanup` does.
    void remove_pinned_state();

    // Writes the inactive slot, then flips the generation: no packet sees half a policy,
    // and buckets of known sources survive. Returns the new generation.
    std::uint32_t apply_policy(const policy::CompiledPolicy& compiled);
    [[nodiscard]] std::uint32_t policy_generation() const;

    // Bans: `ttl` zero = until removed. IPv6 bans narrower than the active
    // classification granularity (/64 by default) are refused.
    void add_ban(const net::Cidr& prefix, std::chrono::nanoseconds ttl, std::uint32_t reason = 0,
                 rl_ban_origin origin = RL_ORIGIN_MANUAL);
    bool remove_ban(const net::Cidr& prefix);
    // Writes a ban entry as given (e.g. a longer expiry for a repeat offender).
    void put_ban(const net::Cidr& prefix, const rl_ban_value& value);
    // Bumped by every ban change, the program's auto-bans included.
    [[nodiscard]] std::uint32_t ban_generation() const;
    [[nodiscard]] std::vector<BanEntry> list_bans() const;

    [[nodiscard]] Counters read_counters() const;
    // Counters of one interface by [reason][verdict], summed over CPUs.
    using InterfaceCounters = std::array<std::array<rl_counter, RL_VERDICTS>, RL_REASON_MAX>;
    [[nodiscard]] InterfaceCounters read_interface_counters(int ifindex) const;
    void reset_counters();

    // Drains ring-buffer events; returns how many were handled.
    int poll_events(std::chrono::milliseconds timeout, const std::function<void(const rl_event&)>& on_event);
    // For event loops: readable when events wait; then consume_events.
    [[nodiscard]] int events_fd() const;
    int consume_events(const std::function<void(const rl_event&)>& on_event);

    struct MapFill {
        std::string name;
        std::size_t entries = 0;
        std::size_t max_entries = 0;
    };
    [[nodiscard]] std::vector<MapFill> map_fill() const;  // buckets, bans, class prefixes

    // The program's clock (jiffies-based rl time), read through rl_clock_probe.
    [[nodiscard]] ClockSample clock() const;

    // Runs rl_xdp on a frame with BPF_PROG_TEST_RUN.
    TestRunResult test_run(std::span<const std::uint8_t> frame, std::uint32_t repeat = 1) const;

    // Direct bucket access for tests and diagnostics.
    [[nodiscard]] std::optional<rl_bucket> lookup_bucket(const rl_bucket_key& key) const;
    void update_bucket(const rl_bucket_key& key, const rl_bucket& value);
    void clear_buckets();  // every bucket, and which sources were seen
    // Marks the source of `key` as seen (rl_seen): its next packet uses its
    // bucket instead of being judged as a first packet.
    void mark_seen(const rl_bucket_key& key);
    // The rl_seen slot of `key` (0 when the filter is off).
    [[nodiscard]] std::uint32_t seen_slot(const rl_bucket_key& key) const;
    // The tag the program writes in that slot for `key` in `window`.
    [[nodiscard]] std::uint8_t seen_tag(const rl_bucket_key& key, std::uint32_t window) const;
    [[nodiscard]] std::size_t count_buckets() const;
    [[nodiscard]] std::vector<BucketEntry> snapshot_buckets() const;  // batch read of the whole map
    [[nodiscard]] const BucketSets& buckets() const { return *buckets_; }
    // Granularity of IPv6 classification entries in the policy in force.
    [[nodiscard]] unsigned v6_class_prefix() const { return v6_class_prefix_; }

    // Pins every map under `dir` (on bpffs) by its name, e.g. dir/rl_buckets;
    // unpin_maps removes those pins (the maps live on while referenced).
    void pin_maps(const std::string& dir);
    void unpin_maps(const std::string& dir);
    // Pins again, under pin_dir, every map and link whose pin has gone (bpffs
    // unmounted, files removed): the fds kept everything alive, and the pins are
    // what a restarted daemon adopts. Returns how many were pinned. Needs bpffs
    // mounted on pin_dir's filesystem.
    std::size_t repin_missing();

    [[nodiscard]] int program_fd() const;
    [[nodiscard]] int map_fd(const std::string& name) const;
    [[nodiscard]] const DataplaneOptions& options() const { return options_; }

private:
    struct SkeletonDeleter {
        void operator()(::rlgate_bpf* skel) const;
    };
    struct RingDeleter {
        void operator()(ring_buffer* rb) const;
    };
    struct Attachment {
        int ifindex;
        AttachMode mode;
        UniqueFd link;
    };

    [[nodiscard]] std::uint64_t bucket_hash(const rl_bucket_key& key) const;  // with rl_ctl's seed
    rl_ctl* ctl();
    [[nodiscard]] const rl_ctl* ctl() const;
    void bump_ban_generation();
    // Batch reads of rl_buckets, a chunk at a time (the map can hold millions).
    void for_each_bucket_chunk(const char* what,
                               const std::function<void(std::span<const rl_bucket_key>, std::span<const rl_bucket>)>& fn) const;
    void adopt_pinned_maps();
    void adopt_pinned_links();
    [[nodiscard]] std::string link_pin_path(const std::string& ifname) const;

    DataplaneOptions options_;
    std::unique_ptr<::rlgate_bpf, SkeletonDeleter> skel_;
    void* ctl_map_ = nullptr;  // mmap of rl_ctl
    std::size_t ctl_map_len_ = 0;
    std::unique_ptr<ring_buffer, RingDeleter> ring_;
    std::function<void(const rl_event&)> on_event_;
    std::map<std::string, Attachment> attachments_;
    std::uint8_t v6_class_prefix_ = 64;
    bool adopted_ = false;
    std::set<std::string> adopted_maps_;
    std::optional<BucketSets> buckets_;  // rl_buckets, once loaded
};

// Removes what a Dataplane with this pin_dir left behind, without loading
// anything (links detach, maps go away with their last reference). Returns
// the number of pins removed.
std::size_t remove_pinned_state(const std::string& pin_dir);

// Bucket key of a source, as the program builds it.
rl_bucket_key bucket_key(const net::IpAddress& src, unsigned prefix128, std::uint8_t rule);

}  // namespace rlgate
