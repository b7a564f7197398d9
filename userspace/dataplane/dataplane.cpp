// SPDX-License-Identifier: BSD-2-Clause
#include "dataplane/dataplane.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>

#include "dataplane/bpf_error.hpp"
#include "rlgate_bpf.skel.h"

namespace rlgate {
namespace {

int libbpf_to_spdlog(enum libbpf_print_level level, const char* fmt, va_list args) {
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, fmt, args);
    std::string line(buf, n > 0 ? std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1) : 0);
    while (!line.empty() && line.back() == '\n')
        line.pop_back();
    switch (level) {
    case LIBBPF_WARN: spdlog::warn("libbpf: {}", line); break;
    case LIBBPF_INFO: spdlog::debug("libbpf: {}", line); break;
    case LIBBPF_DEBUG: spdlog::trace("libbpf: {}", line); break;
    }
    return n;
}

void route_libbpf_logs() {
    static std::once_flag once;
    std::call_once(once, [] { libbpf_set_print(libbpf_to_spdlog); });
}

rl_lpm_key lpm_key(const net::Cidr& c, std::uint8_t slot) {
    rl_lpm_key k{};
    k.prefixlen = RL_LPM_SLOT_BITS + c.prefix128();
    k.slot = static_cast<std::uint8_t>(slot | (c.address.v4 ? RL_LPM_SLOT_V4 : 0));
    std::memcpy(k.addr, c.address.bytes.data(), 16);
    return k;
}

net::Cidr cidr_of(const rl_lpm_key& k) {
    net::Cidr c;
    std::memcpy(c.address.bytes.data(), k.addr, 16);
    const unsigned p128 = k.prefixlen - RL_LPM_SLOT_BITS;
    c.address.v4 = (k.slot & RL_LPM_SLOT_V4) != 0 && p128 >= RL_V4_MAPPED_BITS;
    c.prefix = c.address.v4 ? p128 - 96 : p128;
    return c;
}

template <typename Key>
std::vector<Key> all_keys(int fd) {
    std::vector<Key> keys;
    Key cur{}, next{};
    const Key* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        keys.push_back(next);
        cur = next;
        prev = &cur;
    }
    return keys;
}

namespace fs = std::filesystem;
constexpr long kBpfFsMagic = 0xcafe4a11;

// Maps the loader creates for global data (".kconfig", ".rodata"...) belong
// to one program instance; only our named maps are shared state.
bool is_shared_map(const bpf_map* m) { return std::strchr(bpf_map__name(m), '.') == nullptr; }

void require_bpffs(const std::string& dir) {
    struct statfs st {};
    if (statfs(dir.c_str(), &st) != 0)
        throw BpfError(errno, "stat " + dir);
    if (st.f_type != kBpfFsMagic)
        throw BpfError(EINVAL, dir + " is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)");
}

// A pinned map is only adopted when the program would have created the same
// map: otherwise the new program would misread it.
void check_pinned_map(const bpf_map* m, int fd, const std::string& path) {
    bpf_map_info info{};
    std::uint32_t len = sizeof info;
    check_bpf(bpf_obj_get_info_by_fd(fd, &info, &len), "inspect pinned map " + path);
    std::string diff;
    auto cmp = [&](const char* what, std::uint32_t pinned, std::uint32_t wanted) {
        if (pinned != wanted)
            diff += std::string(diff.empty() ? "" : ", ") + what + " " + std::to_string(pinned) + " (wanted " +
                    std::to_string(wanted) + ")";
    };
    cmp("type", info.type, bpf_map__type(m));
    cmp("key size", info.key_size, bpf_map__key_size(m));
    cmp("value size", info.value_size, bpf_map__value_size(m));
    cmp("max entries", info.max_entries, bpf_map__max_entries(m));
    cmp("flags", info.map_flags, bpf_map__map_flags(m));
    if (!diff.empty())
        throw BpfError(EINVAL, "pinned map " + path + " does not match this program: " + diff +
                                   ". It was created by another rlgate version or with other map sizes; "
                                   "`rlgated --cleanup` removes the pinned state (buckets and counters start over; rlgated restores "
                                   "bans from its state directory)");
}

AttachMode attached_mode(int ifindex) {
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(ifindex, 0, &q) == 0 && q.attach_mode == XDP_ATTACHED_SKB)
        return AttachMode::generic;
    return AttachMode::native;
}

std::string ban_map_hint(int err, std::uint32_t capacity) {
    if (err == ENOSPC || err == E2BIG || err == ENOMEM)
        return ": the ban map is full (" + std::to_string(capacity) +
               " entries; raise maps.bans, which needs `rlgated --cleanup`, or remove bans)";
    return {};
}

std::uint64_t gcra_interval_q(std::uint64_t per_sec) {
    return per_sec ? (1'000'000'000ULL << RL_Q_SHIFT) / per_sec : 0;
}

}  // namespace

const char* to_string(AttachMode m) {
    switch (m) {
    case AttachMode::native: return "native";
    case AttachMode::generic: return "generic";
    case AttachMode::automatic: return "auto";
    }
    return "?";
}

std::uint64_t Counters::packets(std::uint32_t reason, std::uint32_t verdict) const {
    return packets_where([&](const CounterKey& k) { return k.reason == reason && k.verdict == verdict; });
}

std::uint64_t Counters::packets_where(const std::function<bool(const CounterKey&)>& pred) const {
    std::uint64_t sum = 0;
    for (const auto& [k, v] : entries)
        if (pred(k))
            sum += v.packets;
    return sum;
}

void Dataplane::SkeletonDeleter::operator()(::rlgate_bpf* skel) const { rlgate_bpf__destroy(skel); }
void Dataplane::RingDeleter::operator()(ring_buffer* rb) const { ring_buffer__free(rb); }

Dataplane::Dataplane(const DataplaneOptions& options) : options_(options) {
    route_libbpf_logs();
    skel_.reset(rlgate_bpf__open());
    if (!skel_)
        throw BpfError(errno, "open BPF skeleton rlgate_bpf");
    // Sets of RL_BUCKET_WAYS entries: capacity rounds up to a multiple of 4.
    const std::uint32_t bucket_sets = std::max<std::uint32_t>(1, (options_.bucket_entries + RL_BUCKET_WAYS - 1) / RL_BUCKET_WAYS);
    check_bpf(bpf_map__set_max_entries(skel_->maps.rl_buckets, bucket_sets), "size rl_buckets");
    skel_->rodata->rl_bucket_sets = bucket_sets;
    // rl_seen: a power of two of one-byte slots, RL_SEEN_SLOTS_PER_ENTRY per
    // bucket entry; a window is RL_SEEN_WINDOWS_PER_TABLE-th of the slots.
    const std::uint64_t seen_slots = std::clamp<std::uint64_t>(
        std::bit_ceil(std::uint64_t{bucket_sets} * RL_BUCKET_WAYS * RL_SEEN_SLOTS_PER_ENTRY), RL_SEEN_LINE * 16ULL,
        RL_SEEN_MAX_SLOTS);
    check_bpf(bpf_map__set_max_entries(skel_->maps.rl_seen, static_cast<std::uint32_t>(seen_slots / RL_SEEN_LINE)),
              "size rl_seen");
    skel_->rodata->rl_seen_slots_mask = options_.seen_filter ? static_cast<std::uint32_t>(seen_slots - 1) : 0;
    skel_->rodata->rl_seen_window_shift =
        static_cast<std::uint32_t>(std::countr_zero(seen_slots / RL_SEEN_WINDOWS_PER_TABLE));
    check_bpf(bpf_map__set_max_entries(skel_->maps.rl_class, options_.class_entries), "size rl_class");
    check_bpf(bpf_map__set_max_entries(skel_->maps.rl_bans, options_.ban_entries), "size rl_bans");
    adopt_pinned_maps();
    check_bpf(rlgate_bpf__load(skel_.get()),
              "load XDP program rlgate (needs root/CAP_BPF; run with --log-level debug for the verifier log)");

    const int ctl_fd = bpf_map__fd(skel_->maps.rl_ctl);
    ctl_map_len_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    ctl_map_ = mmap(nullptr, ctl_map_len_, PROT_READ | PROT_WRITE, MAP_SHARED, ctl_fd, 0);
    if (ctl_map_ == MAP_FAILED) {
        ctl_map_ = nullptr;
        throw BpfError(errno, "mmap rl_ctl");
    }
    rl_ctl* c = ctl();
    if (adopted_ && c->abi_version != RL_ABI_VERSION)
        throw BpfError(EINVAL, "pinned maps under " + options_.pin_dir + " have layout version " +
                                   std::to_string(c->abi_version) + ", this rlgated uses " +
                                   std::to_string(RL_ABI_VERSION) +
                                   "; `rlgated --cleanup` removes the old state (buckets and counters start over; rlgated "
                                   "restores bans from its state directory)");
    c->abi_version = RL_ABI_VERSION;
    if (c->bucket_seed == 0) {  // new maps: the seed lives as long as rl_buckets' contents
        std::random_device rd;
        c->bucket_seed = (std::uint64_t{rd()} << 32 | rd()) | 1;
    }
    buckets_.emplace(bpf_map__fd(skel_->maps.rl_buckets), c->bucket_seed);
    if (const std::uint32_t gen = policy_generation(); gen != 0) {
        const std::uint32_t slot = gen & 1;
        rl_policy active{};
        if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.rl_policy), &slot, &active) == 0)
            v6_class_prefix_ = active.v6_class_prefix;
    }
    c->sample_interval_q = gcra_interval_q(options_.drop_samples_per_sec);
    c->sample_tolerance_q = c->sample_interval_q;
    c->event_interval_q = gcra_interval_q(options_.events_per_sec);
    c->event_tolerance_q = c->event_interval_q * std::max<std::uint32_t>(1, options_.events_burst);

    ring_.reset(ring_buffer__new(
        bpf_map__fd(skel_->maps.rl_events),
        [](void* self, void* data, std::size_t size) -> int {
            auto* dp = static_cast<Dataplane*>(self);
            if (size >= sizeof(rl_event) && dp->on_event_) {
                rl_event ev;
                std::memcpy(&ev, data, sizeof ev);
                dp->on_event_(ev);
            }
            return 0;
        },
        this, nullptr));
    if (!ring_)
        throw BpfError(errno, "create ring buffer reader for rl_events");
    adopt_pinned_links();
}

void Dataplane::adopt_pinned_maps() {
    if (options_.pin_dir.empty())
        return;
    std::error_code ec;
    fs::create_directories(options_.pin_dir, ec);
    if (ec)
        throw BpfError(ec.value(), "create pin directory " + options_.pin_dir);
    require_bpffs(options_.pin_dir);
    bpf_map* m = nullptr;
    std::size_t found = 0;
    bpf_object__for_each_map(m, skel_->obj) {
        if (!is_shared_map(m))
            continue;
        const std::string path = options_.pin_dir + "/" + bpf_map__name(m);
        if (fs::exists(path)) {
            UniqueFd fd(bpf_obj_get(path.c_str()));
            if (!fd.valid())
                throw BpfError(errno, "open pinned map " + path);
            check_pinned_map(m, fd.get(), path);
            ++found;
            adopted_maps_.insert(bpf_map__name(m));
            adopted_ = adopted_ || std::strcmp(bpf_map__name(m), "rl_ctl") == 0;
        }
        // libbpf reuses the pinned map at load, or creates and pins it.
        check_bpf(bpf_map__set_pin_path(m, path.c_str()), "set pin path " + path);
    }
    if (found && !adopted_)
        throw BpfError(EINVAL, options_.pin_dir + " holds some rlgate maps but not rl_ctl: inconsistent state; "
                                                  "`rlgated --cleanup` removes it");
    if (adopted_)
        spdlog::info("adopting pinned maps under {} (buckets, bans and counters kept)", options_.pin_dir);
}

std::string Dataplane::link_pin_path(const std::string& ifname) const {
    return options_.pin_dir + "/links/" + ifname;
}

void Dataplane::adopt_pinned_links() {
    if (options_.pin_dir.empty())
        return;
    const fs::path dir = options_.pin_dir + "/links";
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        return;
    for (const auto& file : fs::directory_iterator(dir)) {
        const std::string path = file.path().string();
        UniqueFd fd(bpf_obj_get(path.c_str()));
        if (!fd.valid())
            throw BpfError(errno, "open pinned link " + path);
        bpf_link_info info{};
        std::uint32_t len = sizeof info;
        check_bpf(bpf_obj_get_info_by_fd(fd.get(), &info, &len), "inspect pinned link " + path);
        const int ifindex = static_cast<int>(info.xdp.ifindex);
        char name_buf[IF_NAMESIZE] = {};
        if (info.type != BPF_LINK_TYPE_XDP || ifindex == 0 || !if_indextoname(static_cast<unsigned>(ifindex), name_buf)) {
            spdlog::warn("pinned link {} no longer attaches to an interface (deleted?); removing it", path);
            fs::remove(file.path(), ec);
            continue;
        }
        check_bpf(bpf_link_update(fd.get(), program_fd(), nullptr), "switch pinned link " + path + " to the new program");
        std::string ifname = name_buf;
        if (ifname != file.path().filename().string()) {  // renamed meanwhile: re-pin under the new name
            fs::remove(file.path(), ec);
            check_bpf(bpf_obj_pin(fd.get(), link_pin_path(ifname).c_str()), "pin link " + link_pin_path(ifname));
        }
        const AttachMode mode = attached_mode(ifindex);
        spdlog::info("adopted XDP link on {} (ifindex {}, {} mode)", ifname, ifindex, to_string(mode));
        attachments_.insert_or_assign(ifname, Attachment{ifindex, mode, std::move(fd)});
    }
}

void Dataplane::remove_pinned_state() {
    for (auto& [name, a] : attachments_)
        bpf_link_detach(a.link.get());
    attachments_.clear();
    if (!options_.pin_dir.empty())
        rlgate::remove_pinned_state(options_.pin_dir);
}

std::size_t remove_pinned_state(const std::string& pin_dir) {
    std::size_t removed = 0;
    std::error_code ec;
    const fs::path links = pin_dir + "/links";
    if (fs::is_directory(links, ec)) {
        for (const auto& file : fs::directory_iterator(links)) {
            // Detach explicitly: another process may still hold the link open.
            if (UniqueFd fd(bpf_obj_get(file.path().c_str())); fd.valid())
                bpf_link_detach(fd.get());
            removed += fs::remove(file.path(), ec) ? 1U : 0U;
        }
        fs::remove(links, ec);
    }
    if (fs::is_directory(pin_dir, ec)) {
        for (const auto& file : fs::directory_iterator(pin_dir))
            if (file.path().filename().string().starts_with("rl_"))
                removed += fs::remove(file.path(), ec) ? 1U : 0U;
        fs::remove(pin_dir, ec);  // only if empty: never delete what is not ours
    }
    return removed;
}

Dataplane::~Dataplane() {
    attachments_.clear();  // closing the link fds detaches
    ring_.reset();
    if (ctl_map_)
        munmap(ctl_map_, ctl_map_len_);
}

rl_ctl* Dataplane::ctl() { return static_cast<rl_ctl*>(ctl_map_); }
const rl_ctl* Dataplane::ctl() const { return static_cast<const rl_ctl*>(ctl_map_); }

void Dataplane::pin_maps(const std::string& dir) {
    check_bpf(bpf_object__pin_maps(skel_->obj, dir.c_str()), "pin maps under " + dir + " (is bpffs mounted?)");
}

std::size_t Dataplane::repin_missing() {
    if (options_.pin_dir.empty())
        return 0;
    std::error_code ec;
    fs::create_directories(options_.pin_dir + "/links", ec);
    if (ec)
        throw BpfError(ec.value(), "create pin directory " + options_.pin_dir);
    require_bpffs(options_.pin_dir);
    std::size_t pinned = 0;
    bpf_map* m = nullptr;
    bpf_object__for_each_map(m, skel_->obj) {
        if (!is_shared_map(m))
            continue;
        const std::string path = options_.pin_dir + "/" + bpf_map__name(m);
        if (fs::exists(path, ec))
            continue;
        check_bpf(bpf_obj_pin(bpf_map__fd(m), path.c_str()), "pin map " + path);
        ++pinned;
    }
    for (const auto& [ifname, a] : attachments_) {
        const std::string path = link_pin_path(ifname);
        if (fs::exists(path, ec))
            continue;
        check_bpf(bpf_obj_pin(a.link.get(), path.c_str()), "pin link " + path);
        ++pinned;
    }
    return pinned;
}

void Dataplane::unpin_maps(const std::string& dir) {
    check_bpf(bpf_object__unpin_maps(skel_->obj, dir.c_str()), "unpin maps under " + dir);
}

int Dataplane::program_fd() const { return bpf_program__fd(skel_->progs.rl_xdp); }

int Dataplane::map_fd(const std::string& name) const {
    const int fd = bpf_object__find_map_fd_by_name(skel_->obj, name.c_str());
    if (fd < 0)
        throw BpfError(ENOENT, "no map named " + name);
    return fd;
}

AttachMode Dataplane::attach(const std::string& ifname, AttachMode mode) {
    if (attachments_.contains(ifname))
        throw BpfError(EEXIST, "attach XDP to " + ifname + ": already attached");
    const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0)
        throw BpfError(errno, "attach XDP to " + ifname + ": no such interface");
    for (const auto& [other, a] : attachments_)
        if (a.ifindex % RL_GLOBAL_SLOTS == ifindex % RL_GLOBAL_SLOTS)
            throw BpfError(EBUSY, "attach XDP to " + ifname + ": ifindex " + std::to_string(ifindex) +
                                      " shares global-limit slot with " + other + " (ifindex " +
                                      std::to_string(a.ifindex) + ")");
    auto try_attach = [&](AttachMode m) -> int {
        LIBBPF_OPTS(bpf_link_create_opts, opts);
        opts.flags = m == AttachMode::generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
        return bpf_link_create(program_fd(), ifindex, BPF_XDP, &opts);
    };
    AttachMode used = mode == AttachMode::generic ? AttachMode::generic : AttachMode::native;
    int fd = try_attach(used);
    if (fd < 0 && mode == AttachMode::automatic) {
        const int native_err = errno;
        spdlog::warn("native XDP on {} failed ({}); falling back to generic XDP, which runs after skb "
                     "allocation and is several times slower",
                     ifname, std::strerror(native_err));
        used = AttachMode::generic;
        fd = try_attach(used);
    }
    if (fd < 0) {
        const int err = errno;
        std::string hint;
        if (used == AttachMode::native && (err == EOPNOTSUPP || err == EINVAL))
            hint = " (the driver may lack native XDP: set mode \"generic\" or \"auto\")";
        if (err == EBUSY || err == EEXIST)
            hint = " (another XDP program is attached; detach it first)";
        throw BpfError(err, "attach XDP (" + std::string(to_string(used)) + ") to " + ifname + hint);
    }
    UniqueFd link(fd);
    if (!options_.pin_dir.empty()) {
        std::error_code ec;
        fs::create_directories(options_.pin_dir + "/links", ec);
        const std::string path = link_pin_path(ifname);
        if (bpf_obj_pin(link.get(), path.c_str()) != 0)
            throw BpfError(errno, "pin link " + path);  // closing `link` detaches again
    }
    attachments_.emplace(ifname, Attachment{ifindex, used, std::move(link)});
    spdlog::info("attached XDP to {} (ifindex {}, {} mode)", ifname, ifindex, to_string(used));
    return used;
}

void Dataplane::detach(const std::string& ifname) {
    auto it = attachments_.find(ifname);
    if (it == attachments_.end())
        throw BpfError(ENOENT, "detach XDP from " + ifname + ": not attached");
    if (!options_.pin_dir.empty()) {
        bpf_link_detach(it->second.link.get());  // the pin would keep it alive
        std::error_code ec;
        fs::remove(link_pin_path(ifname), ec);
    }
    attachments_.erase(it);
    spdlog::info("detached XDP from {}", ifname);
}

bool Dataplane::link_alive(const std::string& ifname) const {
    const auto it = attachments_.find(ifname);
    if (it == attachments_.end())
        return false;
    bpf_link_info info{};
    std::uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(it->second.link.get(), &info, &len) != 0)
        return false;
    return info.xdp.ifindex != 0;
}

std::map<std::string, AttachMode> Dataplane::attachments() const {
    std::map<std::string, AttachMode> out;
    for (const auto& [name, a] : attachments_)
        out.emplace(name, a.mode);
    return out;
}

std::uint32_t Dataplane::policy_generation() const {
    return std::atomic_ref<const std::uint32_t>(ctl()->policy_gen).load(std::memory_order_acquire);
}

std::uint32_t Dataplane::apply_policy(const policy::CompiledPolicy& compiled) {
    const std::uint32_t gen = policy_generation();
    std::uint32_t next = gen + 1;
    if (next == 0)
        next = 2;  // 0 means "no policy"; keep the parity alternating
    const auto slot = static_cast<std::uint8_t>(next & 1);

    const int class_fd = bpf_map__fd(skel_->maps.rl_class);
    // Entries of the inactive slot belong to the generation before the
    // current one: no packet reads them any more.
    std::size_t active_entries = 0;
    for (const auto& k : all_keys<rl_lpm_key>(class_fd)) {
        if ((k.slot & 1) == slot)
            check_bpf(bpf_map_delete_elem(class_fd, &k), "clear inactive policy slot of rl_class");
        else
            ++active_entries;
    }
    if (active_entries + compiled.class_entries.size() > options_.class_entries)
        throw BpfError(ENOSPC, "policy has " + std::to_string(compiled.class_entries.size()) +
                                   " allow/deny/tier prefixes; rl_class holds " +
                                   std::to_string(options_.class_entries) + " for both policy slots");
    for (const auto& e : compiled.class_entries) {
        const auto k = lpm_key(e.prefix, slot);
        check_bpf(bpf_map_update_elem(class_fd, &k, &e.value, BPF_ANY),
                  "write prefix " + e.prefix.to_string() + " to rl_class");
    }

    if (compiled.rule_index.size() != static_cast<std::size_t>(RL_L4_CLASSES) * RL_PORTS)
        throw BpfError(EINVAL, "compiled rule index has the wrong size");
    std::vector<std::uint32_t> keys(compiled.rule_index.size());
    for (std::size_t i = 0; i < keys.size(); ++i)
        keys[i] = static_cast<std::uint32_t>(slot * RL_L4_CLASSES * RL_PORTS + i);
    std::uint32_t count = static_cast<std::uint32_t>(keys.size());
    LIBBPF_OPTS(bpf_map_batch_opts, batch_opts);
    check_bpf(bpf_map_update_batch(bpf_map__fd(skel_->maps.rl_rule_index), keys.data(),
                                   compiled.rule_index.data(), &count, &batch_opts),
              "write rl_rule_index");

    const std::uint32_t slot_key = slot;
    check_bpf(bpf_map_update_elem(bpf_map__fd(skel_->maps.rl_policy), &slot_key, &compiled.header, BPF_ANY),
              "write rl_policy");

    std::atomic_ref<std::uint32_t>(ctl()->policy_gen).store(next, std::memory_order_release);
    v6_class_prefix_ = compiled.header.v6_class_prefix;
    return next;
}

void Dataplane::bump_ban_generation() {
    std::atomic_ref<std::uint32_t>(ctl()->ban_gen).fetch_add(1, std::memory_order_acq_rel);
}

void Dataplane::add_ban(const net::Cidr& prefix, std::chrono::nanoseconds ttl, std::uint32_t reason,
                        rl_ban_origin origin) {
    if (!prefix.address.v4 && prefix.prefix > v6_class_prefix_)
        throw BpfError(EINVAL, "ban " + prefix.to_string() + ": IPv6 bans must be /" +
                                   std::to_string(v6_class_prefix_) +
                                   " or shorter (a source owns at least a /64; sources are tracked at that "
                                   "granularity)");
    if (ttl.count() < 0)
        throw BpfError(EINVAL, "ban " + prefix.to_string() + ": negative duration");
    const auto now = clock().rl_now_ns;
    rl_ban_value v{};
    v.created_ns = now;
    v.expires_ns = ttl.count() ? now + static_cast<std::uint64_t>(ttl.count()) : 0;
    v.reason = reason;
    v.origin = static_cast<std::uint8_t>(origin);
    const auto k = lpm_key(prefix, 0);
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.rl_bans), &k, &v, BPF_ANY) != 0)
        throw BpfError(errno, "add ban " + prefix.to_string() + ban_map_hint(errno, options_.ban_entries));
    bump_ban_generation();
}

void Dataplane::put_ban(const net::Cidr& prefix, const rl_ban_value& value) {
    const auto k = lpm_key(prefix, 0);
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.rl_bans), &k, &value, BPF_ANY) != 0)
        throw BpfError(errno, "write ban " + prefix.to_string() + ban_map_hint(errno, options_.ban_entries));
    bump_ban_generation();
}

std::uint32_t Dataplane::ban_generation() const {
    return std::atomic_ref<const std::uint32_t>(ctl()->ban_gen).load(std::memory_order_acquire);
}

bool Dataplane::remove_ban(const net::Cidr& prefix) {
    const auto k = lpm_key(prefix, 0);
    if (bpf_map_delete_elem(bpf_map__fd(skel_->maps.rl_bans), &k) != 0) {
        if (errno == ENOENT)
            return false;
        throw BpfError(errno, "remove ban " + prefix.to_string());
    }
    bump_ban_generation();
    return true;
}

std::vector<BanEntry> Dataplane::list_bans() const {
    const int fd = bpf_map__fd(skel_->maps.rl_bans);
    std::vector<BanEntry> out;
    for (const auto& k : all_keys<rl_lpm_key>(fd)) {
        BanEntry e;
        if (bpf_map_lookup_elem(fd, &k, &e.value) != 0)
            continue;  // removed meanwhile
        e.prefix = cidr_of(k);
        out.push_back(e);
    }
    return out;
}

Counters Dataplane::read_counters() const {
    Counters out;
    const int ncpu = libbpf_num_possible_cpus();
    check_bpf(ncpu, "count possible CPUs");
    const int stats_fd = bpf_map__fd(skel_->maps.rl_stats);
    std::vector<std::uint32_t> keys(RL_STATS_ENTRIES);
    std::vector<rl_counter> values(static_cast<std::size_t>(RL_STATS_ENTRIES) * static_cast<std::size_t>(ncpu));
    std::uint32_t count = RL_STATS_ENTRIES;
    std::uint32_t out_batch = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    int err = bpf_map_lookup_batch(stats_fd, nullptr, &out_batch, keys.data(), values.data(), &count, &opts);
    if (err < 0 && errno != ENOENT)
        throw BpfError(errno, "read rl_stats");
    for (std::uint32_t i = 0; i < count; ++i) {
        rl_counter sum{};
        for (int cpu = 0; cpu < ncpu; ++cpu) {
            const auto& v = values[static_cast<std::size_t>(i) * static_cast<std::size_t>(ncpu) + static_cast<std::size_t>(cpu)];
            sum.packets += v.packets;
            sum.bytes += v.bytes;
        }
        if (sum.packets == 0)
            continue;
        std::uint32_t idx = keys[i];
        CounterKey k{};
        k.verdict = idx % RL_VERDICTS;
        idx /= RL_VERDICTS;
        k.reason = idx % RL_REASON_MAX;
        idx /= RL_REASON_MAX;
        k.rule = idx % RL_MAX_RULES;
        k.tier = idx / RL_MAX_RULES;
        out.entries[k] = sum;
    }
    const int health_fd = bpf_map__fd(skel_->maps.rl_health);
    std::vector<std::uint64_t> per_cpu(static_cast<std::size_t>(ncpu));
    for (std::uint32_t h = 0; h < RL_HEALTH_MAX; ++h) {
        check_bpf(bpf_map_lookup_elem(health_fd, &h, per_cpu.data()), "read rl_health");
        for (auto v : per_cpu)
            out.health[h] += v;
    }
    return out;
}

Dataplane::InterfaceCounters Dataplane::read_interface_counters(int ifindex) const {
    const int ncpu = libbpf_num_possible_cpus();
    check_bpf(ncpu, "count possible CPUs");
    const int fd = bpf_map__fd(skel_->maps.rl_if_stats);
    std::vector<rl_counter> per_cpu(static_cast<std::size_t>(ncpu));
    InterfaceCounters out{};
    for (std::uint32_t reason = 0; reason < RL_REASON_MAX; ++reason)
        for (std::uint32_t verdict = 0; verdict < RL_VERDICTS; ++verdict) {
            const std::uint32_t idx = rl_if_stats_index(static_cast<std::uint32_t>(ifindex), reason, verdict);
            check_bpf(bpf_map_lookup_elem(fd, &idx, per_cpu.data()), "read rl_if_stats");
            for (const auto& c : per_cpu) {
                out[reason][verdict].packets += c.packets;
                out[reason][verdict].bytes += c.bytes;
            }
        }
    return out;
}

void Dataplane::reset_counters() {
    const int ncpu = libbpf_num_possible_cpus();
    check_bpf(ncpu, "count possible CPUs");
    std::vector<rl_counter> zero_counters(static_cast<std::size_t>(ncpu));
    const int stats_fd = bpf_map__fd(skel_->maps.rl_stats);
    for (std::uint32_t i = 0; i < RL_STATS_ENTRIES; ++i)
        check_bpf(bpf_map_update_elem(stats_fd, &i, zero_counters.data(), BPF_ANY), "reset rl_stats");
    const int if_fd = bpf_map__fd(skel_->maps.rl_if_stats);
    for (std::uint32_t i = 0; i < RL_IF_STATS_ENTRIES; ++i)
        check_bpf(bpf_map_update_elem(if_fd, &i, zero_counters.data(), BPF_ANY), "reset rl_if_stats");
    std::vector<std::uint64_t> zero(static_cast<std::size_t>(ncpu));
    const int health_fd = bpf_map__fd(skel_->maps.rl_health);
    for (std::uint32_t h = 0; h < RL_HEALTH_MAX; ++h)
        check_bpf(bpf_map_update_elem(health_fd, &h, zero.data(), BPF_ANY), "reset rl_health");
}

int Dataplane::poll_events(std::chrono::milliseconds timeout, const std::function<void(const rl_event&)>& on_event) {
    on_event_ = on_event;
    const int n = ring_buffer__poll(ring_.get(), static_cast<int>(timeout.count()));
    on_event_ = nullptr;
    if (n < 0 && n != -EINTR)
        throw BpfError(-n, "poll rl_events");
    return n < 0 ? 0 : n;
}

int Dataplane::events_fd() const { return ring_buffer__epoll_fd(ring_.get()); }

int Dataplane::consume_events(const std::function<void(const rl_event&)>& on_event) {
    on_event_ = on_event;
    const int n = ring_buffer__consume(ring_.get());
    on_event_ = nullptr;
    if (n < 0)
        throw BpfError(-n, "consume rl_events");
    return n;
}

std::vector<Dataplane::MapFill> Dataplane::map_fill() const {
    std::vector<MapFill> out;
    out.push_back({"rl_buckets", count_buckets(), buckets_->capacity()});
    out.push_back({"rl_bans", all_keys<rl_lpm_key>(bpf_map__fd(skel_->maps.rl_bans)).size(), options_.ban_entries});
    out.push_back({"rl_class", all_keys<rl_lpm_key>(bpf_map__fd(skel_->maps.rl_class)).size(), options_.class_entries});
    return out;
}

ClockSample Dataplane::clock() const {
    std::uint8_t frame[64] = {};
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof frame);
    check_bpf(bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.rl_clock_probe), &opts), "run rl_clock_probe");
    rl_clock_sample s{};
    const std::uint32_t zero = 0;
    check_bpf(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.rl_clock), &zero, &s), "read rl_clock");
    return ClockSample{s.rl_now_ns, s.mono_ns, s.ns_per_jiffy};
}

TestRunResult Dataplane::test_run(std::span<const std::uint8_t> frame, std::uint32_t repeat) const {
    LIBBPF_OPTS(bpf_test_run_opts, opts);
    opts.data_in = frame.data();
    opts.data_size_in = static_cast<std::uint32_t>(frame.size());
    opts.repeat = repeat;
    check_bpf(bpf_prog_test_run_opts(program_fd(), &opts), "test-run rl_xdp");
    return TestRunResult{opts.retval, opts.duration};
}

std::optional<rl_bucket> Dataplane::lookup_bucket(const rl_bucket_key& key) const { return buckets_->find(key); }

void Dataplane::update_bucket(const rl_bucket_key& key, const rl_bucket& value) {
    buckets_->put(key, value);
    mark_seen(key);  // the source's next packet finds this entry, as it would one the program made
}

void Dataplane::clear_buckets() {
    buckets_->clear();
    // ... and forget which sources were seen, or their next packets would be
    // charged for a first packet that the cleared buckets already forgot.
    const int fd = bpf_map__fd(skel_->maps.rl_seen);
    const std::uint32_t lines = bpf_map__max_entries(skel_->maps.rl_seen);
    std::vector<std::uint32_t> indices(lines);
    for (std::uint32_t i = 0; i < lines; ++i)
        indices[i] = i;
    const std::vector<rl_seen_line> empty(lines);
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    std::uint32_t count = lines;
    check_bpf(bpf_map_update_batch(fd, indices.data(), empty.data(), &count, &opts), "clear rl_seen");
}

std::uint64_t Dataplane::bucket_hash(const rl_bucket_key& key) const {
    std::uint64_t words[2];
    std::memcpy(words, &key, sizeof words);
    return rl_bucket_hash(words[0], words[1], ctl()->bucket_seed);
}

std::uint32_t Dataplane::seen_slot(const rl_bucket_key& key) const {
    return rl_seen_slot_of_hash(bucket_hash(key), skel_->rodata->rl_seen_slots_mask);
}

std::uint8_t Dataplane::seen_tag(const rl_bucket_key& key, std::uint32_t window) const {
    return rl_seen_tag(window, bucket_hash(key));
}

void Dataplane::mark_seen(const rl_bucket_key& key) {
    if (skel_->rodata->rl_seen_slots_mask == 0)
        return;
    // Rewrites the slot's whole line: a tag the program writes in it meanwhile
    // is lost (that source's next packet counts as a first one). Tests only.
    const std::uint32_t slot = seen_slot(key);
    const std::uint32_t line_idx = slot / RL_SEEN_LINE;
    rl_seen_line line{};
    check_bpf(bpf_map_lookup_elem(bpf_map__fd(skel_->maps.rl_seen), &line_idx, &line), "read rl_seen");
    const std::uint32_t window = std::atomic_ref<std::uint32_t>(ctl()->seen_window).load(std::memory_order_relaxed);
    line.tag[slot % RL_SEEN_LINE] = seen_tag(key, window);
    check_bpf(bpf_map_update_elem(bpf_map__fd(skel_->maps.rl_seen), &line_idx, &line, BPF_ANY), "write rl_seen");
}

void Dataplane::for_each_bucket_chunk(const char* what,
                                      const std::function<void(std::span<const rl_bucket_key>, std::span<const rl_bucket>)>& fn) const {
    buckets_->for_each_chunk(what, fn);
}

std::size_t Dataplane::count_buckets() const {
    std::size_t total = 0;
    for_each_bucket_chunk("count rl_buckets", [&](auto keys, auto) { total += keys.size(); });
    return total;
}

std::vector<BucketEntry> Dataplane::snapshot_buckets() const {
    std::vector<BucketEntry> out;
    for_each_bucket_chunk("read rl_buckets", [&](auto keys, auto values) {
        for (std::size_t i = 0; i < keys.size(); ++i)
            out.push_back(BucketEntry{keys[i], values[i]});
    });
    return out;
}

rl_bucket_key bucket_key(const net::IpAddress& src, unsigned prefix128, std::uint8_t rule) {
    rl_bucket_key k{};
    const auto masked = net::mask_address(src, prefix128);
    if (src.v4) {
        std::memcpy(k.addr, &masked.bytes[12], 4);
        k.rule = static_cast<std::uint8_t>(rule | RL_BUCKET_KEY_V4);
    } else {
        std::memcpy(k.addr, masked.bytes.data(), sizeof k.addr);
        k.rule = rule;
    }
    k.prefixlen = static_cast<std::uint8_t>(prefix128);
    return k;
}

}  // namespace rlgate
