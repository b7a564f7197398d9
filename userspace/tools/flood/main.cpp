// SPDX-License-Identifier: BSD-2-Clause
// rlgate-flood: the project's traffic generator. It runs bpf/flood.bpf.c with
// BPF_PROG_TEST_RUN in live-frame mode (BPF_F_TEST_XDP_LIVE_FRAMES): the
// kernel copies one template frame into page-pool pages, the program gives
// each frame its source address, and every frame leaves through --dev as if
// the device's own XDP program had returned XDP_TX. Nothing is attached to
// any device. Each --threads thread is pinned to its own CPU and loops over
// test runs of --batch frames; the run ends at --count frames or after
// --duration seconds, whichever comes first.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <linux/bpf.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <latch>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/net/frame.hpp"
#include "core/net/ip_address.hpp"
#include "dataplane/unique_fd.hpp"
#include "flood_bpf.skel.h"

namespace {

using Clock = std::chrono::steady_clock;
using Mac = std::array<std::uint8_t, 6>;

constexpr std::size_t kEthHeader = 14;
// What a test run costs shapes the whole loop. Every run with repeat > 1
// adds the program to the kernel's XDP dispatcher and removes it again
// (bpf_prog_change_xdp), two synchronize_rcu() that took 20-250 ms per run
// here (6.18); a run of one frame skips that and costs ~16 us. At 4096
// frames per run the generator sat idle 80% of the time (150 kpps instead
// of 1 Mpps). So flat out uses runs of millions of frames (the deadline
// interrupts them with a signal), and a paced run sends what is due one
// frame per run until enough is owed to be worth a long run.
constexpr std::uint32_t kDefaultBatch = 1U << 22;
constexpr std::uint64_t kLongRunMin = 1024;  // ~16 ms of one-frame runs
// Smallest share of the --count budget a thread claims (see claim()).
constexpr std::uint64_t kMinFairShare = 4096;
// A paced thread sleeps until at least 1/this of a second's frames are due.
constexpr double kPacedWakeupsPerSecond = 1000.0;
constexpr auto kStopPollInterval = std::chrono::milliseconds(5);
// The kernel's limit on frames per live-frame batch (TEST_XDP_MAX_BATCH).
constexpr std::uint32_t kMaxXdpBatch = 256;
// Entries of the per-CPU arrays in flood.bpf.c, as the skeleton declares them.
constexpr std::size_t kBpfMaxCpus = std::extent_v<decltype(flood_bpf::flood_bpf__bss::flood_frames)>;

struct Options {
    std::string dev;
    std::string src = "10.0.0.1";
    std::uint32_t sources = 1;
    std::string dst;  // default depends on the family of --src
    std::string dst_mac = "ff:ff:ff:ff:ff:ff";
    std::string src_mac;  // default: the device's own address
    std::string proto = "udp";
    std::string v6_vary = "prefix";
    std::uint16_t dport = 9;
    std::size_t size = 64;
    std::uint64_t count = 1'000'000;
    double duration = 10.0;
    std::uint64_t rate = 0;
    unsigned threads = 1;
    std::uint32_t batch = kDefaultBatch;
    std::uint32_t xdp_batch = 0;
    bool json = false;
    bool verbose = false;
    bool size_given = false;
};

// Invalid use or an unusable environment: the message is printed as is.
class UsageError : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

// Set from the SIGINT/SIGTERM handler and when a worker fails; polled by
// every worker between test runs (a run in progress returns EINTR).
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

void on_stop_signal(int) { g_stop.store(true); }

// SIGUSR1 only interrupts a worker's test run (which then returns EINTR).
void on_kick(int) {}

void install_signal_handlers() {
    struct sigaction sa{};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;  // no SA_RESTART: blocking calls return EINTR
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    sa.sa_handler = on_kick;
    ::sigaction(SIGUSR1, &sa, nullptr);
}

int libbpf_to_stderr(enum libbpf_print_level, const char* fmt, va_list args) {
    return std::vfprintf(stderr, fmt, args);
}

int libbpf_silent(enum libbpf_print_level, const char*, va_list) { return 0; }

std::optional<Mac> parse_mac(std::string_view text) {
    Mac mac{};
    if (text.size() != 17)
        return std::nullopt;
    for (std::size_t i = 0; i < mac.size(); ++i) {
        const char* first = text.data() + 3 * i;
        if (i + 1 < mac.size() && first[2] != ':')
            return std::nullopt;
        const auto [end, ec] = std::from_chars(first, first + 2, mac[i], 16);
        if (ec != std::errc{} || end != first + 2)
            return std::nullopt;
    }
    return mac;
}

struct Device {
    std::string name;
    unsigned ifindex = 0;
    Mac mac{};
    unsigned mtu = 0;
    bool is_veth = false;
};

// Looks the device up in the caller's network namespace, which is also the
// one the kernel resolves the test run's ingress_ifindex in.
Device resolve_device(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        throw UsageError("--dev '" + name + "': not a valid interface name");
    Device dev;
    dev.name = name;
    dev.ifindex = if_nametoindex(name.c_str());
    if (dev.ifindex == 0)
        throw UsageError("--dev " + name + ": no such interface in this network namespace");

    rlgate::UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock.valid())
        throw_errno(errno, "socket for interface ioctls");
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.c_str(), name.size());

    if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0)
        throw_errno(errno, "--dev " + name + ": reading interface flags");
    if (!(ifr.ifr_flags & IFF_UP))
        throw UsageError("--dev " + name + ": interface is down");

    if (::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0)
        throw_errno(errno, "--dev " + name + ": reading the MAC address");
    if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
        throw UsageError("--dev " + name + ": not an Ethernet device");
    for (std::size_t i = 0; i < dev.mac.size(); ++i)
        dev.mac[i] = static_cast<std::uint8_t>(ifr.ifr_hwaddr.sa_data[i]);

    if (::ioctl(sock.get(), SIOCGIFMTU, &ifr) != 0)
        throw_errno(errno, "--dev " + name + ": reading the MTU");
    dev.mtu = static_cast<unsigned>(ifr.ifr_mtu);

    // Only used to diagnose a veth peer that cannot receive XDP frames.
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifr.ifr_data = reinterpret_cast<char*>(&info);
    dev.is_veth = ::ioctl(sock.get(), SIOCETHTOOL, &ifr) == 0 && std::strcmp(info.driver, "veth") == 0;
    return dev;
}

// The device's transmit counters, 32 bits wide as getifaddrs reports them;
// only differences over one run are used.
struct TxCounters {
    std::uint32_t packets = 0;
    std::uint32_t dropped = 0;
};

std::optional<TxCounters> tx_counters(const std::string& dev) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0)
        return std::nullopt;
    const std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> guard(list, &::freeifaddrs);
    for (const ifaddrs* a = list; a; a = a->ifa_next) {
        if (a->ifa_addr && a->ifa_addr->sa_family == AF_PACKET && a->ifa_data && dev == a->ifa_name) {
            const auto* stats = static_cast<const rtnl_link_stats*>(a->ifa_data);
            return TxCounters{stats->tx_packets, stats->tx_dropped};
        }
    }
    return std::nullopt;
}

// The template frame and where flood.bpf.c patches it.
struct Template {
    std::vector<std::uint8_t> bytes;
    std::uint32_t src_base = 0;  // host order
    std::uint32_t src_off = 0;
    std::uint32_t ip4_csum_off = 0;
    std::uint32_t l4_csum_off = 0;
    bool udp = true;
};

std::uint32_t load_be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

Template build_template(const Options& o, const Device& dev) {
    using namespace rlgate::net;
    const auto src = IpAddress::parse(o.src);
    if (!src)
        throw UsageError("--src '" + o.src + "': not an IPv4 or IPv6 address");
    const std::string dst_text = !o.dst.empty() ? o.dst : src->v4 ? "198.51.100.1" : "2001:db8:ffff::1";
    const auto dst = IpAddress::parse(dst_text);
    if (!dst)
        throw UsageError("--dst '" + dst_text + "': not an IPv4 or IPv6 address");
    if (dst->v4 != src->v4)
        throw UsageError("--src and --dst must be of the same address family");
    const auto dst_mac = parse_mac(o.dst_mac);
    if (!dst_mac)
        throw UsageError("--dst-mac '" + o.dst_mac + "': expected six hex bytes like 02:00:00:00:00:01");
    std::optional<Mac> src_mac = dev.mac;
    if (!o.src_mac.empty() && !(src_mac = parse_mac(o.src_mac)))
        throw UsageError("--src-mac '" + o.src_mac + "': expected six hex bytes like 02:00:00:00:00:01");

    const bool udp = o.proto == "udp";
    const std::size_t l4_len = udp ? 8 : 20;
    const std::size_t headers = kEthHeader + (src->v4 ? 20 : 40) + l4_len;
    std::size_t size = o.size;
    if (!o.size_given)
        size = std::max(size, headers);
    if (size < headers)
        throw UsageError("--size " + std::to_string(size) + ": below the " + std::to_string(headers) +
                         " bytes of Ethernet, IP and " + (udp ? "UDP" : "TCP") + " headers");
    if (size > kEthHeader + dev.mtu)
        throw UsageError("--size " + std::to_string(size) + ": larger than the MTU of " + dev.name + " (" +
                         std::to_string(dev.mtu) + ") plus the Ethernet header");

    FrameSpec spec;
    spec.src = *src;
    spec.dst = *dst;
    spec.protocol = udp ? kProtoUdp : kProtoTcp;
    spec.dport = o.dport;
    spec.syn = !udp;
    spec.src_mac = *src_mac;
    spec.dst_mac = *dst_mac;
    // A SYN carries no data: a short one is padded at the Ethernet level, as
    // on the wire, rather than given a payload.
    spec.payload_bytes = udp ? size - headers : 0;
    Frame frame = build_frame(spec);
    frame.bytes.resize(size, 0);

    // The varied word: IPv4's whole address; for IPv6 bits 32-63 (inside the
    // /64, so every source lands in its own /64) or the low 32 bits.
    const bool v6_host = o.v6_vary == "host";
    const std::size_t word = src->v4 || v6_host ? 3 : 1;  // 32-bit word of IpAddress::bytes
    Template t;
    t.src_base = load_be32(&src->bytes[4 * word]);
    t.src_off = static_cast<std::uint32_t>(frame.l3_offset + (src->v4 ? 12 : 8 + 4 * word));
    t.ip4_csum_off = src->v4 ? static_cast<std::uint32_t>(frame.l3_offset + 10) : 0;
    t.l4_csum_off = static_cast<std::uint32_t>(frame.l4_offset + (udp ? 6 : 16));
    t.udp = udp;
    t.bytes = std::move(frame.bytes);
    if (std::uint64_t{t.src_base} + o.sources - 1 > std::numeric_limits<std::uint32_t>::max())
        throw UsageError("--sources " + std::to_string(o.sources) + " from --src " + o.src +
                         " runs past the end of the varied 32-bit word");
    return t;
}

using Skeleton = std::unique_ptr<flood_bpf, decltype(&flood_bpf__destroy)>;

Skeleton load_program(const Template& t, std::uint32_t sources) {
    Skeleton skel(flood_bpf__open(), &flood_bpf__destroy);
    if (!skel)
        throw_errno(errno, "opening the flood BPF object");
    skel->rodata->nsources = sources;
    skel->rodata->src_base = t.src_base;
    skel->rodata->src_off = t.src_off;
    skel->rodata->ip4_csum_off = t.ip4_csum_off;
    skel->rodata->l4_csum_off = t.l4_csum_off;
    skel->rodata->l4_is_udp = t.udp ? 1 : 0;
    if (const int err = flood_bpf__load(skel.get()); err != 0)
        throw_errno(-err, "loading the flood XDP program");
    return skel;
}

// CPUs this process may run on, in order; thread i is pinned to the i-th.
std::vector<unsigned> allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0)
        throw_errno(errno, "reading the CPU affinity");
    std::vector<unsigned> cpus;
    for (unsigned c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set))
            cpus.push_back(c);
    return cpus;
}

struct RunPlan {
    int prog_fd = -1;
    const std::vector<std::uint8_t>* frame = nullptr;
    xdp_md ctx{};
    unsigned threads = 1;
    std::uint64_t count = 0;     // 0: bounded by time only
    double rate_per_thread = 0;  // frames per second; 0: flat out
    std::uint32_t batch = kDefaultBatch;  // most frames per test run
    std::uint32_t burst = 1;              // paced: frames due before a sleeping thread wakes
    std::uint32_t xdp_batch = 0;
    Clock::time_point deadline = Clock::time_point::max();  // set just before the start
};

struct Shared {
    std::atomic<std::uint64_t> claimed{0};  // frames handed out of the --count budget
    std::atomic<unsigned> running;
    Clock::time_point t0;  // written before `go` opens
    std::latch ready;
    std::latch go{1};
    std::mutex error_mutex;
    std::string error;  // first failure

    explicit Shared(unsigned workers) : running(workers), ready(workers) {}

    void fail(std::string what) {
        {
            const std::lock_guard lock(error_mutex);
            if (error.empty())
                error = std::move(what);
        }
        g_stop.store(true);
    }
};

// Takes up to `want` frames out of the --count budget, sharing the rest
// fairly so no thread idles at the end while another sends a long batch.
std::uint64_t claim(const RunPlan& plan, Shared& shared, std::uint64_t want) {
    if (plan.count == 0)
        return want;
    std::uint64_t first = shared.claimed.load(std::memory_order_relaxed);
    std::uint64_t n = 0;
    do {
        if (first >= plan.count)
            return 0;
        const std::uint64_t left = plan.count - first;
        const std::uint64_t fair = std::max<std::uint64_t>((left + plan.threads - 1) / plan.threads, kMinFairShare);
        n = std::min({want, fair, left});
    } while (!shared.claimed.compare_exchange_weak(first, first + n, std::memory_order_relaxed));
    return n;
}

void worker(const RunPlan& plan, unsigned cpu, Shared& shared) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    const int pin_err = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
    shared.ready.count_down();
    shared.go.wait();
    if (pin_err != 0)
        shared.fail(std::system_error(pin_err, std::generic_category(), "pinning a thread to CPU " + std::to_string(cpu))
                        .what());

    const auto t0 = shared.t0;
    const auto due = [&](std::uint64_t frames) {
        return t0 + std::chrono::duration_cast<Clock::duration>(
                        std::chrono::duration<double>(static_cast<double>(frames) / plan.rate_per_thread));
    };
    const auto frames_due = [&](Clock::time_point now) {
        return static_cast<std::uint64_t>(std::chrono::duration<double>(now - t0).count() * plan.rate_per_thread);
    };
    std::uint64_t sent = 0;  // frames this thread asked the kernel for
    while (!g_stop.load(std::memory_order_relaxed)) {
        std::uint64_t want = plan.batch;
        // Pace against the schedule since t0, not the last call, so sleep
        // overshoot and slow calls do not accumulate: send what is due.
        if (plan.rate_per_thread > 0) {
            const auto now = Clock::now();
            const std::uint64_t owed = std::max(frames_due(now), sent) - sent;
            if (owed == 0) {
                if (now >= plan.deadline)
                    break;
                std::this_thread::sleep_until(std::min(due(sent + plan.burst), plan.deadline));
                continue;
            }
            want = owed >= kLongRunMin ? std::min(want, owed) : 1;
        }
        const std::uint64_t n = claim(plan, shared, want);
        if (n == 0)
            break;

        bpf_test_run_opts opts{};
        opts.sz = sizeof opts;
        opts.data_in = plan.frame->data();
        opts.data_size_in = static_cast<std::uint32_t>(plan.frame->size());
        opts.ctx_in = &plan.ctx;
        opts.ctx_size_in = sizeof plan.ctx;
        opts.repeat = static_cast<int>(n);
        opts.flags = BPF_F_TEST_XDP_LIVE_FRAMES;
        opts.batch_size = plan.xdp_batch;
        if (const int ret = bpf_prog_test_run_opts(plan.prog_fd, &opts); ret != 0) {
            // A signal (the deadline, ^C) cuts a run short; the frames it did
            // send are counted by the program itself. Unasked-for EINTR: retry.
            if (ret == -EINTR)
                continue;
            shared.fail(std::system_error(-ret, std::generic_category(), "live-frame test run on CPU " +
                                                                             std::to_string(cpu))
                            .what());
            break;
        }
        sent += n;
    }
    shared.running.fetch_sub(1);
}

struct Result {
    std::uint64_t sent = 0;
    double seconds = 0;
};

Result run(const Options& o, const Template& t, const Device& dev, const flood_bpf& skel) {
    const auto cpus = allowed_cpus();
    if (o.threads > cpus.size())
        throw UsageError("--threads " + std::to_string(o.threads) + ": only " + std::to_string(cpus.size()) +
                         " CPUs available");
    for (unsigned i = 0; i < o.threads; ++i)
        if (cpus[i] >= kBpfMaxCpus)
            throw UsageError("CPU " + std::to_string(cpus[i]) + " is beyond the " + std::to_string(kBpfMaxCpus) +
                             " CPUs flood.bpf.c keeps state for");

    RunPlan plan;
    plan.prog_fd = bpf_program__fd(skel.progs.flood);
    plan.frame = &t.bytes;
    // Live frames need a context: data_end gives the frame length, the
    // ingress device is where XDP_TX sends the frames.
    plan.ctx.data = 0;
    plan.ctx.data_end = static_cast<std::uint32_t>(t.bytes.size());
    plan.ctx.ingress_ifindex = dev.ifindex;
    plan.threads = o.threads;
    plan.count = o.count;
    plan.rate_per_thread = static_cast<double>(o.rate) / o.threads;
    plan.batch = o.batch;
    plan.burst = static_cast<std::uint32_t>(std::max(1.0, plan.rate_per_thread / kPacedWakeupsPerSecond));
    plan.xdp_batch = o.xdp_batch;

    Shared shared(o.threads);
    std::vector<std::jthread> workers;
    workers.reserve(o.threads);
    try {
        for (unsigned i = 0; i < o.threads; ++i)
            workers.emplace_back(worker, std::cref(plan), cpus[i], std::ref(shared));
    } catch (...) {
        // Release the threads already started into a stopped generator.
        g_stop.store(true);
        shared.go.count_down();
        throw;
    }
    shared.ready.wait();
    shared.t0 = Clock::now();
    if (o.duration > 0)
        plan.deadline = shared.t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
    shared.go.count_down();

    // A test run only returns early for a signal: at the deadline (or after
    // ^C) kick the workers with SIGUSR1 until all have left their runs. The
    // repeat covers a kick that lands just before a worker enters a run.
    while (shared.running.load() > 0) {
        if (Clock::now() >= plan.deadline)
            g_stop.store(true);
        if (g_stop.load())
            for (auto& w : workers)
                ::pthread_kill(w.native_handle(), SIGUSR1);
        std::this_thread::sleep_until(std::min(plan.deadline, Clock::now() + kStopPollInterval));
    }
    for (auto& w : workers)
        w.join();
    const double wall_seconds = std::chrono::duration<double>(Clock::now() - shared.t0).count();

    if (!shared.error.empty())
        throw std::runtime_error(shared.error);

    // Frames the program returned XDP_TX for, on whichever CPU it ran, and
    // the time from the first to the last of them: the runs' wall time would
    // add the kernel's per-run setup and teardown.
    Result r;
    std::uint64_t first_ns = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t last_ns = 0;
    const auto* bss = skel.bss;
    for (std::size_t cpu = 0; cpu < kBpfMaxCpus; ++cpu) {
        if (bss->flood_frames[cpu][0] == 0)
            continue;
        r.sent += bss->flood_frames[cpu][0];
        first_ns = std::min<std::uint64_t>(first_ns, bss->flood_first_ns[cpu][0]);
        last_ns = std::max<std::uint64_t>(last_ns, bss->flood_last_ns[cpu][0]);
    }
    r.seconds = r.sent >= 2 && last_ns > first_ns ? static_cast<double>(last_ns - first_ns) / 1e9 : wall_seconds;
    return r;
}

void print_result(const Options& o, const Result& r) {
    const double pps = r.seconds > 0 ? static_cast<double>(r.sent) / r.seconds : 0.0;
    if (o.json) {
        nlohmann::ordered_json j;
        j["sent"] = r.sent;
        j["seconds"] = std::round(r.seconds * 1e6) / 1e6;
        j["pps"] = std::llround(pps);
        j["sources"] = o.sources;
        std::cout << j.dump() << '\n';
        return;
    }
    std::printf("%12s %10s %12s %8s\n", "sent", "seconds", "pps", "sources");
    std::printf("%12llu %10.3f %12.0f %8u\n", static_cast<unsigned long long>(r.sent), r.seconds, pps, o.sources);
}

int run_main(const Options& o) {
    if (o.count == 0 && o.duration <= 0)
        throw UsageError("refusing an unbounded run: give --count or --duration a non-zero value");
    libbpf_set_print(o.verbose ? libbpf_to_stderr : libbpf_silent);

    const Device dev = resolve_device(o.dev);
    const Template t = build_template(o, dev);
    const Skeleton skel = load_program(t, o.sources);
    install_signal_handlers();

    const auto before = tx_counters(dev.name);
    const Result r = run(o, t, dev, *skel);
    const auto after = tx_counters(dev.name);

    print_result(o, r);
    if (!before || !after || r.sent == 0)
        return 0;
    const std::uint32_t tx = after->packets - before->packets;  // modulo 2^32
    const std::uint32_t dropped = after->dropped - before->dropped;
    // veth discards XDP frames without a trace on either side when its peer
    // has neither an XDP program nor GRO enabled: nothing was sent at all.
    if (dev.is_veth && tx * 100.0 < static_cast<double>(r.sent)) {
        std::cerr << "rlgate-flood: " << tx << " of " << r.sent << " frames left " << dev.name
                  << ": the veth peer needs an XDP program or GRO enabled (ethtool -K PEER gro on)"
                     " to receive XDP frames\n";
        return 1;
    }
    // Counted, e.g. a veth peer whose receive ring overflowed: worth knowing
    // when reading the pps figure, not an error of the generator.
    if (dropped * 100.0 > static_cast<double>(r.sent))
        std::cerr << "rlgate-flood: note: " << dev.name << " dropped " << dropped << " of " << r.sent
                  << " frames (tx_dropped); the receiver did not keep up\n";
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    CLI::App app{"rlgate-flood: send generated frames out of a device with XDP live frames (BPF_PROG_TEST_RUN).\n"
                 "The run ends after --count frames or --duration seconds, whichever comes first."};
    app.add_option("--dev", o.dev, "Device to send from (in the caller's network namespace)")->required();
    app.add_option("--src", o.src, "First source address; its family decides IPv4 or IPv6")->capture_default_str();
    app.add_option("--sources", o.sources, "Number of distinct sources, cycled per frame")
        ->check(CLI::Range(1U, std::numeric_limits<std::uint32_t>::max()))
        ->capture_default_str();
    app.add_option("--v6-vary", o.v6_vary,
                   "IPv6: vary bits 32-63 (prefix: one /64 per source) or the low 32 bits (host)")
        ->check(CLI::IsMember({"prefix", "host"}))
        ->capture_default_str();
    app.add_option("--dst", o.dst, "Destination address (default 198.51.100.1 or 2001:db8:ffff::1)");
    app.add_option("--dst-mac", o.dst_mac,
                   "Destination MAC; the IP stack of the receiver needs its own, broadcast only suits XDP")
        ->capture_default_str();
    app.add_option("--src-mac", o.src_mac, "Source MAC (default: the device's own)");
    app.add_option("--proto", o.proto, "Frame type")->check(CLI::IsMember({"udp", "tcp-syn"}))->capture_default_str();
    app.add_option("--dport", o.dport, "Destination port")->capture_default_str();
    auto* size = app.add_option("--size", o.size, "Frame length in bytes without FCS (default: 64, or the headers)")
                     ->check(CLI::Range(std::size_t{1}, std::size_t{65535}));
    app.add_option("--count", o.count, "Frames to send in total; 0: no count bound")->capture_default_str();
    app.add_option("--duration", o.duration, "Seconds to send at most; 0: no time bound")
        ->check(CLI::Range(0.0, 1e6))
        ->capture_default_str();
    app.add_option("--rate", o.rate, "Frames per second over all threads; 0: flat out")->capture_default_str();
    app.add_option("--threads", o.threads, "Sending threads, each pinned to its own CPU")
        ->check(CLI::Range(1U, 1024U))
        ->capture_default_str();
    app.add_option("--batch", o.batch, "Most frames per test run (its repeat field)")
        ->check(CLI::Range(1U, static_cast<unsigned>(std::numeric_limits<int>::max())))
        ->capture_default_str();
    app.add_option("--xdp-batch", o.xdp_batch, "Frames per kernel batch inside a test run (1-256; default: kernel's 64)")
        ->check(CLI::Range(1U, kMaxXdpBatch));
    app.add_flag("--json", o.json, "Print {\"sent\", \"seconds\", \"pps\", \"sources\"} as JSON");
    app.add_flag("-v,--verbose", o.verbose, "Print libbpf's log (verifier output) to stderr");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    o.size_given = size->count() > 0;

    try {
        return run_main(o);
    } catch (const UsageError& e) {
        std::cerr << "rlgate-flood: " << e.what() << '\n';
    } catch (const std::system_error& e) {
        std::cerr << "rlgate-flood: " << e.what() << '\n';
        if (e.code().value() == EPERM || e.code().value() == EACCES)
            std::cerr << "rlgate-flood: run as root (needs CAP_BPF and CAP_NET_ADMIN)\n";
        else if (!o.verbose)
            std::cerr << "rlgate-flood: rerun with --verbose for libbpf's log\n";
    } catch (const std::exception& e) {
        std::cerr << "rlgate-flood: " << e.what() << '\n';
    }
    return 1;
}
