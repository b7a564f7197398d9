// SPDX-License-Identifier: BSD-2-Clause
// Heaviest sources between two snapshots of the bucket map. Pure logic.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/net/ip_address.hpp"
#include "rlgate/abi.h"

namespace rlgate::stats {

struct BucketSample {
    rl_bucket_key key{};
    std::uint32_t passed = 0;
    std::uint32_t dropped = 0;
    std::uint8_t state = 0;
    std::uint8_t tier = 0;
};

struct Talker {
    net::Cidr source;  // the bucket's prefix: an address, or a tier's aggregate
    std::uint8_t rule = 0;
    std::uint8_t tier = 0;
    std::uint8_t state = 0;  // enum rl_bucket_state
    double passed_pps = 0;
    double dropped_pps = 0;
};

// The source prefix a bucket key stands for.
net::Cidr source_of(const rl_bucket_key& key);

// Sources with the most packets between `before` and `after`, `seconds`
// apart, heaviest first. Wrapping counters are handled; entries evicted or
// created in between count from zero. Classification-cache entries of
// aggregated sources carry no counts and are left out.
std::vector<Talker> top_talkers(std::span<const BucketSample> before, std::span<const BucketSample> after,
                                double seconds, std::size_t n);

}  // namespace rlgate::stats
