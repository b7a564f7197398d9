// SPDX-License-Identifier: BSD-2-Clause
// A pair of network namespaces joined by a veth pair, created for one test
// and deleted when the object dies (also when the test fails).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include "dataplane/unique_fd.hpp"

namespace rlgate::testing {

inline std::string shell(const std::string& cmd, int* status = nullptr) {
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen((cmd + " 2>&1").c_str(), "r"), pclose);
    std::string out;
    std::array<char, 4096> buf{};
    while (pipe && fgets(buf.data(), buf.size(), pipe.get()))
        out += buf.data();
    const int rc = pipe ? pclose(pipe.release()) : -1;
    if (status)
        *status = rc;
    return out;
}

class VethPair {
public:
    // Namespaces "<tag>-a-N" and "<tag>-b-N", veth va <-> vb, 10.201.0.1/24 and .2/24.
    explicit VethPair(const std::string& tag) {
        const auto n = std::to_string(getpid()) + "-" + std::to_string(std::random_device{}() % 100000);
        a_ = tag + "-a-" + n;
        b_ = tag + "-b-" + n;
        run("ip netns add " + a_);
        run("ip netns add " + b_);
        create_link();
    }
    ~VethPair() {
        shell("ip netns del " + a_);
        shell("ip netns del " + b_);
    }
    VethPair(const VethPair&) = delete;
    VethPair& operator=(const VethPair&) = delete;

    // Deletes the veth pair (both ends go; an XDP program on vb is detached by the kernel).
    void delete_link() { run("ip -n " + b_ + " link del vb"); }
    // The pair again, same names and addresses, new ifindexes.
    void create_link() {
        run("ip link add va netns " + a_ + " numtxqueues 2 numrxqueues 2 type veth peer name vb netns " + b_ +
            " numtxqueues 2 numrxqueues 2");
        // No IPv6 autoconfiguration chatter: tests count every packet the program sees.
        for (const auto* ns : {&a_, &b_})
            run("ip netns exec " + *ns + " sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1");
        run("ip -n " + a_ + " addr add 10.201.0.1/24 dev va");
        run("ip -n " + b_ + " addr add 10.201.0.2/24 dev vb");
        run("ip -n " + a_ + " link set va up");
        run("ip -n " + b_ + " link set vb up");
        run("ip -n " + a_ + " link set lo up");
        run("ip -n " + b_ + " link set lo up");
        run("ip netns exec " + b_ + " sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.vb.rp_filter=0");
        mac_b_ = shell("ip -n " + b_ + " -br link show vb | awk '{print $3}'");
        while (!mac_b_.empty() && (mac_b_.back() == '\n' || mac_b_.back() == ' '))
            mac_b_.pop_back();
    }

    const std::string& ns_a() const { return a_; }
    const std::string& ns_b() const { return b_; }
    const std::string& mac_b() const { return mac_b_; }

private:
    static void run(const std::string& cmd) {
        int status = 0;
        auto out = shell(cmd, &status);
        if (status != 0)
            throw std::runtime_error(cmd + ": " + out);
    }
    std::string a_, b_, mac_b_;
};

// Switches the calling thread into a named namespace; switches back on scope exit.
class InNetns {
public:
    explicit InNetns(const std::string& name)
        : self_(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) {
        UniqueFd target(::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC));
        if (!self_.valid() || !target.valid() || setns(target.get(), CLONE_NEWNET) != 0)
            throw std::runtime_error("cannot enter network namespace " + name);
    }
    ~InNetns() { setns(self_.get(), CLONE_NEWNET); }
    InNetns(const InNetns&) = delete;
    InNetns& operator=(const InNetns&) = delete;

private:
    UniqueFd self_;
};

}  // namespace rlgate::testing
