// SPDX-License-Identifier: BSD-2-Clause
// `rlgate-bench e2e`: packets/s through a veth pair that rlgate-flood floods
// from one namespace into another, where the receiving end runs
//   xdp_drop  an empty XDP_DROP program (the fastest possible drop),
//   rlgate    rl_xdp with every source over its per-source limit,
//   nft       XDP_PASS plus an nftables per-source limit in prerouting,
// for a flood from 1 source and from 10,000 sources, in one run.
//
// What is measured is the generator-side rate (rlgate-flood's "pps"). veth
// has no wire: the peer's NAPI receives the generated frames in the sender's
// softirq on the sender's CPU, when the test run re-enables bottom halves
// after each batch. The receiver's per-frame cost therefore slows the sender
// down, and the sent rate is what sender plus receiver sustain together.
// The generator's own fixed cost per frame is in every figure, so the
// ratios understate how much cheaper one receiver is than another. Frames
// the veth ring overflows on are counted as sent (rlgate-flood then notes
// tx_dropped), and rlgate's own counters show how many it saw. Frames within
// their source's limit go on to the IP stack; the default limit (10 pps,
// burst 20) keeps all 10,000 sources over it at these rates (a warning says
// when less than 90% was dropped; see --limit-pps).
#include "e2e_bench.hpp"
#include "core/net/frame.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <thread>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "bench_bpf.skel.h"
#include "core/policy/policy.hpp"
#include "dataplane/bpf_error.hpp"
#include "dataplane/bucket_sets.hpp"
#include "dataplane/dataplane.hpp"
#include "dataplane/unique_fd.hpp"

namespace rlgate::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kTxDev = "rlgb-tx";  // veth end in the source namespace
constexpr const char* kRxDev = "rlgb-rx";  // veth end in the receiving namespace
constexpr const char* kTxCidr = "10.203.0.1/24";
constexpr const char* kRxCidr = "10.203.0.2/24";
constexpr const char* kRxAddr = "10.203.0.2";
constexpr const char* kNftTable = "rlgate_bench";
constexpr std::uint32_t kSourceCounts[] = {1, 10'000};
// Setup commands take well under a second; a generator run gets its
// --duration bound plus this much for loading and exiting.
constexpr auto kCommandTimeout = std::chrono::seconds(30);

[[noreturn]] void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::generic_category(), what);
}

std::string join(const std::vector<std::string>& argv) {
    std::string s;
    for (const auto& a : argv)
        s += (s.empty() ? "" : " ") + a;
    return s;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// ^C or SIGTERM must not skip the destructors that delete the namespaces:
// the handler only sets a flag, checked between steps and while waiting
// for a child.
volatile std::sig_atomic_t g_interrupted = 0;

void on_interrupt(int) { g_interrupted = 1; }

// A child that exits before reading its stdin must give EPIPE, not kill us.
void on_sigpipe(int) {}

class Interrupted : public std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check_interrupted() {
    if (g_interrupted)
        throw Interrupted("interrupted");
}

class SignalGuard {
public:
    SignalGuard() {
        struct sigaction sa{};
        sigemptyset(&sa.sa_mask);
        sa.sa_handler = on_interrupt;  // no SA_RESTART: poll() returns EINTR
        ::sigaction(SIGINT, &sa, &old_int_);
        ::sigaction(SIGTERM, &sa, &old_term_);
        sa.sa_handler = on_sigpipe;
        ::sigaction(SIGPIPE, &sa, &old_pipe_);
    }
    ~SignalGuard() {
        ::sigaction(SIGINT, &old_int_, nullptr);
        ::sigaction(SIGTERM, &old_term_, nullptr);
        ::sigaction(SIGPIPE, &old_pipe_, nullptr);
    }
    SignalGuard(const SignalGuard&) = delete;
    SignalGuard& operator=(const SignalGuard&) = delete;

private:
    struct sigaction old_int_{};
    struct sigaction old_term_{};
    struct sigaction old_pipe_{};
};

// A forked child: killed and reaped if still running when the object dies.
class Child {
public:
    explicit Child(pid_t pid) : pid_(pid) {}
    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            reap();
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    int wait() {
        const int status = reap();
        pid_ = -1;
        return status;
    }

private:
    int reap() const {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        return status;
    }
    pid_t pid_;
};

struct CommandResult {
    int status = 0;      // as waitpid reports it
    std::string output;  // stdout and stderr, interleaved

    [[nodiscard]] bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
    [[nodiscard]] std::string describe() const {
        if (WIFEXITED(status))
            return "exit status " + std::to_string(WEXITSTATUS(status));
        if (WIFSIGNALED(status))
            return std::string("killed by ") + strsignal(WTERMSIG(status));
        return "status " + std::to_string(status);
    }
};

enum class Interruptible { yes, no };

// Runs argv (looked up in PATH) with `input` on its stdin; killed after
// `timeout`. Cleanup commands run with Interruptible::no: a ^C must not
// abort the deletion of what the run created.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout,
                          const std::string& input = {}, Interruptible interruptible = Interruptible::yes) {
    int out[2];
    int in[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        throw_errno(errno, "pipe");
    UniqueFd out_r(out[0]);
    UniqueFd out_w(out[1]);
    if (::pipe2(in, O_CLOEXEC) != 0)
        throw_errno(errno, "pipe");
    UniqueFd in_r(in[0]);
    UniqueFd in_w(in[1]);
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    const pid_t pid = ::fork();
    if (pid < 0)
        throw_errno(errno, "fork for " + argv.front());
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec; dup2 clears O_CLOEXEC.
        ::dup2(in_r.get(), STDIN_FILENO);
        ::dup2(out_w.get(), STDOUT_FILENO);
        ::dup2(out_w.get(), STDERR_FILENO);
        ::execvp(args[0], args.data());
        constexpr char msg[] = "cannot execute ";
        [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
        n = ::write(STDERR_FILENO, args[0], std::strlen(args[0]));
        n = ::write(STDERR_FILENO, "\n", 1);
        ::_exit(127);
    }
    Child child(pid);
    in_r.reset();
    out_w.reset();
    for (std::size_t done = 0; done < input.size();) {
        const ssize_t n = ::write(in_w.get(), input.data() + done, input.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;  // the child exited early; its status says why
        done += static_cast<std::size_t>(n);
    }
    in_w.reset();

    std::string output;
    const auto deadline = Clock::now() + timeout;
    std::array<char, 4096> buf{};
    for (;;) {
        if (interruptible == Interruptible::yes)
            check_interrupted();
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0)
            throw std::runtime_error(join(argv) + ": still running after " + std::to_string(timeout.count()) +
                                     " s; killed");
        pollfd p{out_r.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (ready < 0 && errno != EINTR)
            throw_errno(errno, "poll");
        if (ready <= 0)
            continue;
        const ssize_t got = ::read(out_r.get(), buf.data(), buf.size());
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            throw_errno(errno, "read from " + argv.front());
        if (got == 0)
            break;
        output.append(buf.data(), static_cast<std::size_t>(got));
    }
    return {child.wait(), std::move(output)};
}

void run_checked(const std::vector<std::string>& argv, const std::string& input = {}) {
    const auto r = run_command(argv, kCommandTimeout, input);
    if (!r.ok())
        throw std::runtime_error(join(argv) + ": " + r.describe() + ": " + trim(r.output));
}

// For destructors: never throws, reports a failure on stderr.
void run_cleanup(const std::vector<std::string>& argv) noexcept {
    try {
        const auto r = run_command(argv, kCommandTimeout, {}, Interruptible::no);
        if (!r.ok())
            std::cerr << "rlgate-bench e2e: cleanup failed: " << join(argv) << ": " << trim(r.output) << "\n";
    } catch (const std::exception& e) {
        std::cerr << "rlgate-bench e2e: cleanup failed: " << join(argv) << ": " << e.what() << "\n";
    }
}

// A named network namespace, deleted with everything in it (veth end,
// nft table) when the object dies.
class Netns {
public:
    explicit Netns(std::string name) : name_(std::move(name)) { run_checked({"ip", "netns", "add", name_}); }
    ~Netns() { run_cleanup({"ip", "netns", "del", name_}); }
    Netns(const Netns&) = delete;
    Netns& operator=(const Netns&) = delete;

    [[nodiscard]] const std::string& name() const { return name_; }

private:
    std::string name_;
};

// Switches the calling thread into a named namespace and back on scope exit.
// Interface names, ifindexes and bpf_link_create resolve in the thread's
// namespace.
class InNetns {
public:
    explicit InNetns(const std::string& name) : home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) {
        if (!home_.valid())
            throw_errno(errno, "open /proc/thread-self/ns/net");
        const UniqueFd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
        if (!target.valid())
            throw_errno(errno, "open /run/netns/" + name);
        if (::setns(target.get(), CLONE_NEWNET) != 0)
            throw_errno(errno, "enter network namespace " + name);
    }
    ~InNetns() {
        if (::setns(home_.get(), CLONE_NEWNET) != 0) {
            // Going on in the wrong namespace could touch the machine's own interfaces.
            std::perror("rlgate-bench e2e: cannot return to the original network namespace");
            std::abort();
        }
    }
    InNetns(const InNetns&) = delete;
    InNetns& operator=(const InNetns&) = delete;

private:
    UniqueFd home_;
};

std::string unique_name(const char* role) {
    return fmt::format("rlgb-{}-{}-{}", role, ::getpid(), std::random_device{}() % 100000);
}

// Source and receiving namespaces joined by a veth pair, with what veth
// needs to carry the generator's frames: as many queues as sender threads
// (one ring per sending CPU), GRO on the receiver (so frames are not
// discarded while no XDP program is attached), rp_filter off (the sources
// have no route back).
class TestNet {
public:
    explicit TestNet(unsigned threads) : src_(unique_name("src")), dst_(unique_name("dst")) {
        const auto queues = std::to_string(std::max(2U, threads));
        run_checked({"ip", "link", "add", kTxDev, "netns", src_.name(), "numtxqueues", queues, "numrxqueues", queues,
                     "type", "veth", "peer", "name", kRxDev, "netns", dst_.name(), "numtxqueues", queues,
                     "numrxqueues", queues});
        run_checked({"ip", "-n", src_.name(), "addr", "add", kTxCidr, "dev", kTxDev});
        run_checked({"ip", "-n", dst_.name(), "addr", "add", kRxCidr, "dev", kRxDev});
        for (const auto& [ns, dev] : {std::pair{&src_, kTxDev}, std::pair{&dst_, kRxDev}}) {
            run_checked({"ip", "-n", ns->name(), "link", "set", "lo", "up"});
            run_checked({"ip", "-n", ns->name(), "link", "set", dev, "up"});
        }
        run_checked({"ip", "netns", "exec", dst_.name(), "ethtool", "-K", kRxDev, "gro", "on"});
        run_checked({"ip", "netns", "exec", dst_.name(), "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
                     "net.ipv4.conf.default.rp_filter=0", std::string("net.ipv4.conf.") + kRxDev + ".rp_filter=0"});
        rx_mac_ = read_rx_mac();
    }

    [[nodiscard]] const std::string& src() const { return src_.name(); }
    [[nodiscard]] const std::string& dst() const { return dst_.name(); }
    [[nodiscard]] const std::string& rx_mac() const { return rx_mac_; }

private:
    std::string read_rx_mac() const {
        const InNetns in(dst_.name());
        const UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!sock.valid())
            throw_errno(errno, "socket");
        ifreq ifr{};
        std::strncpy(ifr.ifr_name, kRxDev, IFNAMSIZ - 1);
        if (::ioctl(sock.get(), SIOCGIFHWADDR, &ifr) != 0)
            throw_errno(errno, std::string("read the MAC address of ") + kRxDev);
        const auto b = [&](int i) { return static_cast<unsigned char>(ifr.ifr_hwaddr.sa_data[i]); };
        return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b(0), b(1), b(2), b(3), b(4), b(5));
    }

    Netns src_;  // declared first: deleted last
    Netns dst_;
    std::string rx_mac_;
};

struct BenchSkelDeleter {
    void operator()(bench_bpf* s) const { bench_bpf__destroy(s); }
};
using BenchSkel = std::unique_ptr<bench_bpf, BenchSkelDeleter>;

// A program attached in native mode through bpf_link: closing the link
// detaches it, also if the process dies.
class XdpLink {
public:
    XdpLink(int prog_fd, const std::string& netns, const char* ifname) {
        const InNetns in(netns);
        const unsigned ifindex = ::if_nametoindex(ifname);
        if (ifindex == 0)
            throw BpfError(errno, std::string("attach XDP to ") + ifname + ": no such interface");
        LIBBPF_OPTS(bpf_link_create_opts, opts);
        opts.flags = XDP_FLAGS_DRV_MODE;
        const int fd = bpf_link_create(prog_fd, static_cast<int>(ifindex), BPF_XDP, &opts);
        if (fd < 0)
            throw BpfError(errno, std::string("attach XDP (native) to ") + ifname);
        link_.reset(fd);
    }

private:
    UniqueFd link_;
};

// rl_xdp on an interface of a namespace for one scope.
class RlgateAttachment {
public:
    RlgateAttachment(Dataplane& dp, const std::string& netns, const char* ifname) : dp_(dp), ifname_(ifname) {
        const InNetns in(netns);
        dp_.attach(ifname_, AttachMode::native);
    }
    ~RlgateAttachment() {
        try {
            dp_.detach(ifname_);
        } catch (const std::exception& e) {
            std::cerr << "rlgate-bench e2e: cleanup failed: " << e.what() << "\n";
        }
    }
    RlgateAttachment(const RlgateAttachment&) = delete;
    RlgateAttachment& operator=(const RlgateAttachment&) = delete;

private:
    Dataplane& dp_;
    std::string ifname_;
};

// The nftables way to do rlgate's job (what iptables' hashlimit does): a
// dynamic set keyed by source address whose elements carry their own
// `limit rate over`, updated at prerouting priority raw, the earliest hook
// an IP packet reaches; frames over their source's limit are counted and
// dropped. The counter proves the rule drops.
class NftTable {
public:
    NftTable(std::string netns, std::uint64_t pps, std::uint64_t burst) : netns_(std::move(netns)) {
        const auto ruleset = fmt::format(
            "table ip {0} {{\n"
            "  set src_limit {{ type ipv4_addr; size 65536; flags dynamic,timeout; timeout 60s; }}\n"
            "  chain prerouting {{\n"
            "    type filter hook prerouting priority raw; policy accept;\n"
            "    update @src_limit {{ ip saddr limit rate over {1}/second burst {2} packets }} counter drop\n"
            "  }}\n"
            "}}\n",
            kNftTable, pps, burst);
        run_checked({"ip", "netns", "exec", netns_, "nft", "-f", "-"}, ruleset);
    }
    ~NftTable() { run_cleanup({"ip", "netns", "exec", netns_, "nft", "delete", "table", "ip", kNftTable}); }
    NftTable(const NftTable&) = delete;
    NftTable& operator=(const NftTable&) = delete;

    // Packets the drop rule has counted so far.
    [[nodiscard]] std::uint64_t dropped() const {
        const std::vector<std::string> argv{"ip", "netns", "exec", netns_, "nft", "-j",
                                            "list", "chain", "ip", kNftTable, "prerouting"};
        const auto r = run_command(argv, kCommandTimeout);
        if (!r.ok())
            throw std::runtime_error(join(argv) + ": " + r.describe() + ": " + trim(r.output));
        const auto j = nlohmann::json::parse(r.output);
        for (const auto& item : j.at("nftables"))
            if (item.contains("rule"))
                for (const auto& expr : item["rule"].at("expr"))
                    if (expr.contains("counter"))
                        return expr["counter"].at("packets").get<std::uint64_t>();
        throw std::runtime_error("no counter in the nft rule: " + trim(r.output));
    }

private:
    std::string netns_;
};

struct FloodRun {
    std::uint64_t sent = 0;
    double pps = 0;
};

// rlgate-flood run from the source namespace at the receiving veth end.
class Generator {
public:
    Generator(std::string path, const TestNet& net, const E2eBenchOptions& o)
        : path_(std::move(path)), net_(net), o_(o) {}

    // `label` names the run in the generator's notes.
    [[nodiscard]] FloodRun run(std::uint32_t sources, const std::string& label) const {
        const std::vector<std::string> argv{"ip", "netns", "exec", net_.src(), path_,
                                            "--dev", kTxDev,
                                            "--dst", kRxAddr,
                                            "--dst-mac", net_.rx_mac(),
                                            "--count", std::to_string(o_.count),
                                            "--sources", std::to_string(sources),
                                            "--threads", std::to_string(o_.threads),
                                            "--duration", fmt::format("{}", o_.duration),
                                            "--json"};
        const auto timeout = std::chrono::seconds(static_cast<long long>(o_.duration)) + kCommandTimeout;
        const auto r = run_command(argv, timeout);
        if (!r.ok())
            throw std::runtime_error("rlgate-flood: " + r.describe() + ": " + trim(r.output) + "\n  command: " +
                                     join(argv));
        // One JSON line; anything else is the generator's notes (e.g. tx_dropped).
        nlohmann::json j;
        std::size_t begin = 0;
        while (begin < r.output.size()) {
            const auto end = std::min(r.output.find('\n', begin), r.output.size());
            const auto line = r.output.substr(begin, end - begin);
            if (line.starts_with('{'))
                j = nlohmann::json::parse(line);
            else if (!line.empty())
                std::cerr << "rlgate-bench e2e: [" << label << "] " << line << "\n";
            begin = end + 1;
        }
        if (j.is_null())
            throw std::runtime_error("rlgate-flood printed no JSON: " + trim(r.output));
        FloodRun f;
        f.sent = j.at("sent").get<std::uint64_t>();
        f.pps = j.at("pps").get<double>();
        if (f.sent == 0)
            throw std::runtime_error("rlgate-flood sent nothing");
        if (f.sent < o_.count)
            std::cerr << fmt::format("rlgate-bench e2e: [{}] note: --duration {} s ended the run after {} of {} "
                                     "frames\n",
                                     label, o_.duration, f.sent, o_.count);
        return f;
    }

private:
    std::string path_;
    const TestNet& net_;
    const E2eBenchOptions& o_;
};

struct Measurement {
    std::vector<double> pps;  // measured rounds, in order
    double median_pps = 0;
    std::uint64_t sent = 0;  // frames over the measured rounds
};

// Warm-up rounds first: they exhaust every source's burst and fill the
// bucket map or the nft set, so the measured rounds see the steady state.
Measurement measure(const Generator& gen, const char* receiver, std::uint32_t sources, const E2eBenchOptions& o,
                    const std::function<void()>& before_measured_rounds) {
    const auto label = [&](const std::string& round) {
        return fmt::format("{}, {} sources, {}", receiver, sources, round);
    };
    for (int i = 0; i < o.warmup; ++i)
        (void)gen.run(sources, label("warm-up"));
    before_measured_rounds();
    Measurement m;
    for (int r = 0; r < o.rounds; ++r) {
        const auto f = gen.run(sources, label(fmt::format("round {}", r + 1)));
        m.pps.push_back(f.pps);
        m.sent += f.sent;
    }
    auto sorted = m.pps;
    std::sort(sorted.begin(), sorted.end());
    m.median_pps = sorted[sorted.size() / 2];
    return m;
}

struct Row {
    std::uint32_t sources = 0;
    Measurement xdp_drop, rlgate, nft;
    std::uint64_t rlgate_seen = 0;  // frames rl_xdp counted over the measured rounds
    std::uint64_t rlgate_dropped = 0;
    std::uint64_t nft_dropped = 0;

    [[nodiscard]] double vs_xdp_drop() const { return rlgate.median_pps / xdp_drop.median_pps; }
    [[nodiscard]] double vs_nft() const { return rlgate.median_pps / nft.median_pps; }
};

// The figures only compare drop paths when most frames are over their limit:
// frames within it go on to the IP stack, whose cost then dominates.
void warn_if_implausible(const Row& r, const E2eBenchOptions& o) {
    if (r.nft_dropped == 0 && r.rlgate_dropped > 0)
        throw std::runtime_error(fmt::format("the nftables rule dropped none of {} frames from {} source(s) while "
                                             "rlgate dropped {}: the rule does not work here",
                                             r.nft.sent, r.sources, r.rlgate_dropped));
    if (r.rlgate_seen * 100 < r.rlgate.sent * 95)
        std::cerr << fmt::format("rlgate-bench e2e: warning: rl_xdp saw {} of {} frames sent from {} source(s)\n",
                                 r.rlgate_seen, r.rlgate.sent, r.sources);
    for (const auto& [name, dropped, sent] : {std::tuple{"rlgate", r.rlgate_dropped, r.rlgate.sent},
                                              std::tuple{"nft", r.nft_dropped, r.nft.sent}})
        if (dropped * 10 < sent * 9)
            std::cerr << fmt::format(
                "rlgate-bench e2e: warning: {} dropped only {:.0f}% of the frames from {} source(s): the rest were "
                "within their limit and went on to the IP stack, whose cost is in the figure ({} sources x {} pps "
                "may send {:.2f} Mpps; lower --limit-pps to put every source far over its limit)\n",
                name, 100.0 * static_cast<double>(dropped) / static_cast<double>(sent), r.sources, r.sources,
                o.limit_pps, static_cast<double>(r.sources * o.limit_pps) / 1e6);
}

std::string default_flood_path() {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec)
        throw std::runtime_error("cannot locate rlgate-flood (read /proc/self/exe: " + ec.message() +
                                 "); give --flood PATH");
    return (self.parent_path().parent_path() / "rlgate-flood").string();
}

void progress(const E2eBenchOptions& o, const std::string& what) {
    if (::isatty(STDERR_FILENO))
        std::cerr << fmt::format("rlgate-bench e2e: {} ({} warm-up + {} rounds)\n", what, o.warmup, o.rounds);
}

double mpps(double pps) { return pps / 1e6; }

// Rounded to `digits` decimals, so JSON prints 12.0049 rather than 12.004900000000001.
double rounded(double v, int digits) {
    const double scale = std::pow(10.0, digits);
    return std::round(v * scale) / scale;
}

void print_json(const E2eBenchOptions& o, const std::vector<Row>& rows) {
    nlohmann::ordered_json j;
    j["results"] = nlohmann::ordered_json::array();
    for (const auto& r : rows) {
        nlohmann::ordered_json row;
        row["sources"] = r.sources;
        row["xdp_drop_mpps"] = rounded(mpps(r.xdp_drop.median_pps), 4);
        row["rlgate_mpps"] = rounded(mpps(r.rlgate.median_pps), 4);
        row["nft_mpps"] = rounded(mpps(r.nft.median_pps), 4);
        row["rlgate_vs_xdp_drop"] = rounded(r.vs_xdp_drop(), 3);
        row["rlgate_vs_nft"] = rounded(r.vs_nft(), 3);
        row["rlgate_sent"] = r.rlgate.sent;
        row["rlgate_seen"] = r.rlgate_seen;
        row["rlgate_dropped"] = r.rlgate_dropped;
        row["nft_sent"] = r.nft.sent;
        row["nft_dropped"] = r.nft_dropped;
        auto rounds = [](const Measurement& m) {
            auto a = nlohmann::ordered_json::array();
            for (const double pps : m.pps)
                a.push_back(rounded(mpps(pps), 4));
            return a;
        };
        row["rounds_mpps"] = {{"xdp_drop", rounds(r.xdp_drop)}, {"rlgate", rounds(r.rlgate)}, {"nft", rounds(r.nft)}};
        j["results"].push_back(std::move(row));
    }
    j["count"] = o.count;
    j["threads"] = o.threads;
    j["rounds"] = o.rounds;
    j["warmup"] = o.warmup;
    j["limit_pps"] = o.limit_pps;
    j["limit_burst"] = o.limit_burst;
    j["measured"] = "generator-side packets/s (veth: the receiver runs in the sender's softirq)";
    std::cout << j.dump(2) << "\n";
}

void print_table(const E2eBenchOptions& o, const std::vector<Row>& rows) {
    std::cout << fmt::format(
        "rlgate-flood -> veth -> receiver, native XDP; {} frames x {} rounds (median) after {} warm-up, {} threads\n"
        "generator-side Mpps (veth: the receiver runs in the sender's softirq); "
        "rlgate and nft limit {} pps / burst {} per source\n",
        o.count, o.rounds, o.warmup, o.threads, o.limit_pps, o.limit_burst);
    std::cout << fmt::format("{:>8} {:>9} {:>9} {:>9} {:>16} {:>11}\n", "sources", "xdp_drop", "rlgate", "nft",
                             "rlgate/xdp_drop", "rlgate/nft");
    for (const auto& r : rows)
        std::cout << fmt::format("{:>8} {:>9.3f} {:>9.3f} {:>9.3f} {:>16.2f} {:>11.2f}\n", r.sources,
                                 mpps(r.xdp_drop.median_pps), mpps(r.rlgate.median_pps), mpps(r.nft.median_pps),
                                 r.vs_xdp_drop(), r.vs_nft());
    std::cout << "frames over the measured rounds (sanity: rlgate seen ~ sent):\n";
    std::cout << fmt::format("{:>8} {:>12} {:>12} {:>15} {:>12} {:>12}\n", "sources", "rlgate sent", "rlgate seen",
                             "rlgate dropped", "nft sent", "nft dropped");
    for (const auto& r : rows)
        std::cout << fmt::format("{:>8} {:>12} {:>12} {:>15} {:>12} {:>12}\n", r.sources, r.rlgate.sent,
                                 r.rlgate_seen, r.rlgate_dropped, r.nft.sent, r.nft_dropped);
}

int run(const E2eBenchOptions& o) {
    const std::string flood = o.flood.empty() ? default_flood_path() : o.flood;
    if (::access(flood.c_str(), X_OK) != 0)
        throw std::runtime_error("rlgate-flood not found or not executable at " + flood +
                                 " (build the rlgate-flood target or give --flood PATH)");
    const SignalGuard signals;

    // Load everything before creating namespaces: a failure leaves nothing behind.
    BenchSkel ref(bench_bpf__open());
    if (!ref)
        throw BpfError(errno, "open bench programs");
    check_bpf(bench_bpf__load(ref.get()), "load bench programs");
    Dataplane dp;
    policy::Policy pol;
    pol.tiers.push_back(
        {.name = "default", .limit = {.packets_per_sec = o.limit_pps, .burst_packets = o.limit_burst}});
    pol.default_tier = "default";
    dp.apply_policy(policy::compile(pol));

    const TestNet net(o.threads);
    const Generator gen(flood, net, o);
    std::vector<Row> rows;
    for (const std::uint32_t sources : kSourceCounts) {
        Row row;
        row.sources = sources;
        {
            progress(o, fmt::format("{} source(s) into XDP_DROP", sources));
            const XdpLink link(bpf_program__fd(ref->progs.bench_drop), net.dst(), kRxDev);
            row.xdp_drop = measure(gen, "xdp_drop", sources, o, [] {});
        }
        check_interrupted();
        {
            progress(o, fmt::format("{} source(s) into rlgate", sources));
            const RlgateAttachment attached(dp, net.dst(), kRxDev);
            row.rlgate = measure(gen, "rlgate", sources, o, [&] { dp.reset_counters(); });
            const auto c = dp.read_counters();
            row.rlgate_seen = c.packets_where([](const CounterKey&) { return true; });
            row.rlgate_dropped = c.packets_where([](const CounterKey& k) { return k.verdict == RL_VERDICT_DROP; });
        }
        check_interrupted();
        {
            progress(o, fmt::format("{} source(s) into XDP_PASS + nftables", sources));
            const XdpLink link(bpf_program__fd(ref->progs.bench_pass), net.dst(), kRxDev);
            const NftTable table(net.dst(), o.limit_pps, o.limit_burst);
            std::uint64_t before = 0;
            row.nft = measure(gen, "nft", sources, o, [&] { before = table.dropped(); });
            row.nft_dropped = table.dropped() - before;
        }
        warn_if_implausible(row, o);
        rows.push_back(std::move(row));
    }

    if (o.json)
        print_json(o, rows);
    else
        print_table(o, rows);
    return 0;
}

}  // namespace

int run_e2e_bench(const E2eBenchOptions& o) {
    if (::geteuid() != 0) {
        std::cerr << "rlgate-bench e2e: must run as root (creates network namespaces and veth pairs, "
                     "attaches XDP programs, loads nftables rules)\n";
        return 1;
    }
    try {
        return run(o);
    } catch (const Interrupted&) {
        std::cerr << "rlgate-bench e2e: interrupted; namespaces, links and nft tables removed\n";
        return 130;
    }
}

}  // namespace rlgate::bench

namespace rlgate::bench {
namespace {

struct AutobanRow {
    std::uint64_t rate = 0;
    std::uint64_t sent = 0;
    std::uint64_t passed_before_ban = 0;
    double ban_after_ms = -1;       // flood launch -> ban, program clock (4 ms steps at HZ=250)
    double expected_ms = 0;         // (burst + drops) / rate: the first packet -> ban, in theory
};

int run_autoban(const AutobanBenchOptions& o) {
    const std::string flood = o.flood.empty() ? default_flood_path() : o.flood;
    if (::access(flood.c_str(), X_OK) != 0)
        throw std::runtime_error("rlgate-flood not found or not executable at " + flood);
    const SignalGuard signals;
    DataplaneOptions dopts;
    dopts.bucket_entries = 4096;
    Dataplane dp(dopts);
    policy::Policy pol;
    pol.tiers.push_back({.name = "default",
                         .limit = {.packets_per_sec = o.limit_pps, .burst_packets = o.limit_burst},
                         .autoban = {.drops = o.drops, .window_ns = 10'000'000'000ULL, .ban_ns = 60'000'000'000ULL}});
    pol.default_tier = "default";
    dp.apply_policy(policy::compile(pol));
    const TestNet net(1);
    const RlgateAttachment attached(dp, net.dst(), kRxDev);
    const auto source = *net::IpAddress::parse("10.77.0.1");
    std::vector<AutobanRow> rows;
    for (const std::uint64_t rate : {10'000ULL, 100'000ULL, 1'000'000ULL}) {
        check_interrupted();
        dp.clear_buckets();
        for (const auto& b : dp.list_bans())
            dp.remove_ban(b.prefix);
        AutobanRow row;
        row.rate = rate;
        row.expected_ms = 1e3 * static_cast<double>(o.limit_burst + o.drops) / static_cast<double>(rate);
        const auto t0 = dp.clock().rl_now_ns;
        const std::vector<std::string> argv{"ip", "netns", "exec", net.src(), flood, "--dev", kTxDev, "--dst", kRxAddr,
                                            "--dst-mac", net.rx_mac(), "--src", "10.77.0.1", "--sources", "1",
                                            "--rate", std::to_string(rate), "--count", std::to_string(rate / 2),
                                            "--duration", "5", "--json"};
        const auto r = run_command(argv, kCommandTimeout);
        if (!r.ok())
            throw std::runtime_error("rlgate-flood: " + r.describe() + ": " + trim(r.output));
        const auto brace = r.output.find('{');
        row.sent = brace == std::string::npos ? 0 : nlohmann::json::parse(r.output.substr(brace)).value("sent", 0ULL);
        for (const auto& b : dp.list_bans())
            if (b.prefix.contains(source))
                row.ban_after_ms = static_cast<double>(b.value.created_ns - t0) / 1e6;
        if (const auto bucket = dp.lookup_bucket(bucket_key(source, 128, 0)))
            row.passed_before_ban = bucket->passed;
        rows.push_back(row);
    }
    if (o.json) {
        auto a = nlohmann::json::array();
        for (const auto& r : rows)
            a.push_back({{"rate_pps", r.rate}, {"sent", r.sent}, {"passed_before_ban", r.passed_before_ban},
                         {"ban_after_ms", r.ban_after_ms}, {"expected_ms", r.expected_ms}});
        std::cout << nlohmann::json{{"limit_pps", o.limit_pps}, {"burst", o.limit_burst}, {"drops", o.drops}, {"runs", a}}.dump()
                  << "\n";
    } else {
        std::cout << fmt::format("one source flooding a veth; limit {} pps, burst {}, auto-ban after {} drops within 10 s\n",
                                 o.limit_pps, o.limit_burst, o.drops);
        std::cout << fmt::format("{:>12} {:>10} {:>18} {:>22} {:>26}\n", "flood pps", "sent", "passed before ban",
                                 "launch -> ban (ms)", "theory: 1st pkt -> ban (ms)");
        for (const auto& r : rows)
            std::cout << fmt::format("{:>12} {:>10} {:>18} {:>22} {:>26.1f}\n", r.rate, r.sent, r.passed_before_ban,
                                     r.ban_after_ms < 0 ? std::string("no ban") : fmt::format("{:.0f}", r.ban_after_ms),
                                     r.expected_ms);
        std::cout << "launch -> ban includes starting rlgate-flood in the namespace; the program clock ticks in 4 ms\n";
    }
    return 0;
}

}  // namespace

int run_autoban_bench(const AutobanBenchOptions& o) {
    if (::geteuid() != 0) {
        std::cerr << "rlgate-bench autoban: must run as root (namespaces, veth, XDP)\n";
        return 1;
    }
    try {
        return run_autoban(o);
    } catch (const Interrupted&) {
        std::cerr << "rlgate-bench autoban: interrupted; namespaces and links removed\n";
        return 130;
    }
}

}  // namespace rlgate::bench

namespace rlgate::bench {
namespace {

// One GET over a fresh connection; returns the body size, throws on failure.
std::size_t http_get(std::uint16_t port, const std::string& path) {
    const UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        throw_errno(errno, "connect to the admin listener");
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
        throw_errno(errno, "send");
    std::string raw;
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;)
        raw.append(buf, static_cast<std::size_t>(n));
    if (!raw.starts_with("HTTP/1.1 200"))
        throw std::runtime_error("GET " + path + ": " + raw.substr(0, raw.find('\r')));
    return raw.size() - raw.find("\r\n\r\n") - 4;
}

int find_program(const char* name) {
    for (std::uint32_t id = 0; bpf_prog_get_next_id(id, &id) == 0;) {
        const int fd = bpf_prog_get_fd_by_id(id);
        if (fd < 0)
            continue;
        bpf_prog_info info{};
        std::uint32_t len = sizeof info;
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && std::string(info.name) == name)
            return fd;  // the newest one wins below: keep looking
        ::close(fd);
    }
    return -1;
}

double xdp_ns_per_packet(int prog_fd) {
    net::FrameSpec spec;  // one source under its limit: lookup, GCRA, counters
    spec.src = *net::IpAddress::parse("192.0.2.1");
    spec.dst = *net::IpAddress::parse("198.51.100.1");
    spec.dport = 9999;
    const auto frame = net::build_frame(spec).bytes;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_size_in = static_cast<std::uint32_t>(frame.size()),
                .repeat = 2'000'000);
    check_bpf(bpf_prog_test_run_opts(prog_fd, &opts), "test-run rl_xdp");
    return opts.duration;
}

int run_scrape(const ScrapeBenchOptions& o) {
    std::string rlgated = o.rlgated;
    if (rlgated.empty()) {
        std::error_code ec;
        rlgated = (std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().parent_path().parent_path() / "rlgated").string();
    }
    if (::access(rlgated.c_str(), X_OK) != 0)
        throw std::runtime_error("rlgated not found at " + rlgated + " (give --rlgated PATH)");
    const SignalGuard signals;
    const Netns ns(unique_name("scrape"));
    run_checked({"ip", "-n", ns.name(), "link", "set", "lo", "up"});
    const auto id = std::to_string(::getpid());
    const std::string dir = "/tmp/rlgb-scrape-" + id, pin = "/sys/fs/bpf/rlgb-scrape-" + id, run = "/run/rlgb-scrape-" + id;
    std::filesystem::create_directories(dir);
    const nlohmann::json cfg = {{"interfaces", nlohmann::json::array()},
                                {"daemon", {{"pin_dir", pin}, {"socket", run + "/rlgated.sock"}, {"state_dir", dir + "/state"}}},
                                {"maps", {{"buckets", std::max<std::uint32_t>(1U << 20, o.sources * 2)}}},
                                {"tiers", {{"default", {{"pps", 100}, {"burst", 200}}}}},
                                {"admin", {{"listen", "127.0.0.1:9477"}}}};
    {
        std::FILE* f = std::fopen((dir + "/rlgate.json").c_str(), "w");
        std::fputs(cfg.dump().c_str(), f);
        std::fclose(f);
    }
    struct Cleanup {
        std::string rlgated, dir, run;
        ~Cleanup() {
            run_cleanup({"pkill", "-f", "rlgated --config " + dir + "/rlgate.json"});
            ::usleep(300'000);
            run_cleanup({rlgated, "--cleanup", "--config", dir + "/rlgate.json"});
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
            std::filesystem::remove_all(run, ec);
        }
    } cleanup{rlgated, dir, run};
    run_checked({"nsenter", "--net=/run/netns/" + ns.name(), rlgated, "--config", dir + "/rlgate.json"});

    // Fill the bucket map as a million spoofed sources would.
    BucketSets buckets = BucketSets::open_pinned(pin);
    std::vector<rl_bucket_key> keys(o.sources);
    std::vector<rl_bucket> values(o.sources);
    for (std::uint32_t i = 0; i < o.sources; ++i) {
        const std::uint32_t addr = 0x0b000000U + i;
        keys[i].addr[0] = static_cast<std::uint8_t>(addr >> 24);
        keys[i].addr[1] = static_cast<std::uint8_t>(addr >> 16);
        keys[i].addr[2] = static_cast<std::uint8_t>(addr >> 8);
        keys[i].addr[3] = static_cast<std::uint8_t>(addr);
        keys[i].prefixlen = 128;
        keys[i].rule = RL_BUCKET_KEY_V4;
        values[i].passed = i;
        values[i].last_ns = 1;
    }
    buckets.put_all(keys, values);
    const UniqueFd prog(find_program("rl_xdp"));
    if (!prog.valid())
        throw std::runtime_error("cannot find the daemon's rl_xdp program");

    std::vector<double> ms;
    std::size_t bytes = 0;
    const double idle_ns = xdp_ns_per_packet(prog.get());
    double busy_ns = 0;
    {
        const InNetns in(ns.name());
        bytes = http_get(9477, "/metrics");  // warm
        std::atomic<bool> scraping{true};
        std::thread load([&] {
            const InNetns in_thread(ns.name());
            while (scraping)
                http_get(9477, "/metrics");
        });
        busy_ns = xdp_ns_per_packet(prog.get());
        scraping = false;
        load.join();
        for (int i = 0; i < o.scrapes; ++i) {
            check_interrupted();
            const auto t0 = std::chrono::steady_clock::now();
            http_get(9477, "/metrics");
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
    }
    std::sort(ms.begin(), ms.end());
    const double p50 = ms[ms.size() / 2], p99 = ms[std::min(ms.size() - 1, ms.size() * 99 / 100)], max = ms.back();
    if (o.json) {
        std::cout << nlohmann::json{{"sources", o.sources}, {"scrapes", o.scrapes}, {"bytes", bytes}, {"p50_ms", p50},
                                    {"p99_ms", p99}, {"max_ms", max}, {"xdp_ns_idle", idle_ns}, {"xdp_ns_while_scraping", busy_ns}}
                         .dump()
                  << "\n";
    } else {
        std::cout << fmt::format("rlgated tracking {} sources; GET /metrics ({} bytes) x {}:\n", o.sources, bytes, o.scrapes);
        std::cout << fmt::format("  p50 {:.2f} ms   p99 {:.2f} ms   max {:.2f} ms   (goal: < 50 ms)\n", p50, p99, max);
        std::cout << fmt::format("  rl_xdp {:.0f} ns/packet idle, {:.0f} ns/packet while scraping non-stop\n", idle_ns, busy_ns);
    }
    return 0;
}

}  // namespace

int run_scrape_bench(const ScrapeBenchOptions& o) {
    if (::geteuid() != 0) {
        std::cerr << "rlgate-bench scrape: must run as root (starts rlgated in a namespace)\n";
        return 1;
    }
    try {
        return run_scrape(o);
    } catch (const Interrupted&) {
        std::cerr << "rlgate-bench scrape: interrupted; daemon and namespace removed\n";
        return 130;
    }
}

}  // namespace rlgate::bench
