// SPDX-License-Identifier: BSD-2-Clause
#include "core/ratelimit/time_zone.hpp"

#include <algorithm>
#include <stdexcept>

namespace rlgate::ratelimit {
namespace {

class Reader {
public:
    explicit Reader(std::string_view b) : b_(b) {}
    std::uint64_t be(std::size_t n) {
        need(n);
        std::uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i)
            v = (v << 8) | static_cast<unsigned char>(b_[pos_ + i]);
        pos_ += n;
        return v;
    }
    void skip(std::uint64_t n) {
        need(n);
        pos_ += static_cast<std::size_t>(n);
    }
    std::string_view take(std::size_t n) {
        need(n);
        auto s = b_.substr(pos_, n);
        pos_ += n;
        return s;
    }

private:
    void need(std::uint64_t n) const {
        if (n > b_.size() - pos_)
            throw std::invalid_argument("truncated TZif file");
    }
    std::string_view b_;
    std::size_t pos_ = 0;
};

struct Counts {
    std::uint64_t isut, isstd, leap, time, type, chars;
};

Counts header(Reader& r, char& version) {
    if (r.take(4) != "TZif")
        throw std::invalid_argument("not a TZif file");
    version = r.take(1)[0];
    r.skip(15);
    Counts c{r.be(4), r.be(4), r.be(4), r.be(4), r.be(4), r.be(4)};
    if (c.type == 0 || c.type > 256 || c.time > 100'000 || c.leap > 10'000 || c.chars > 100'000)
        throw std::invalid_argument("implausible TZif counts");
    return c;
}

}  // namespace

TimeZone TimeZone::from_tzif(std::string_view bytes, std::string name) {
    Reader r(bytes);
    char version = 0;
    Counts c = header(r, version);
    if (version < '2')
        throw std::invalid_argument("TZif version 1 (32-bit times) is not supported");
    // Skip the 32-bit block; the 64-bit one follows with its own header.
    r.skip(c.time * 5 + c.type * 6 + c.chars + c.leap * 8 + c.isstd + c.isut);
    c = header(r, version);
    TimeZone z;
    z.name_ = std::move(name);
    z.transitions_.resize(c.time);
    for (auto& t : z.transitions_)
        t = static_cast<std::int64_t>(r.be(8));
    std::vector<std::uint8_t> type_of(c.time);
    for (auto& t : type_of)
        t = static_cast<std::uint8_t>(r.be(1));
    std::vector<std::int32_t> utoff(c.type);
    for (auto& o : utoff) {
        o = static_cast<std::int32_t>(static_cast<std::uint32_t>(r.be(4)));
        r.skip(2);  // isdst, designation index
        if (o < -25 * 3600 || o > 26 * 3600)
            throw std::invalid_argument("implausible UTC offset in TZif file");
    }
    if (!std::is_sorted(z.transitions_.begin(), z.transitions_.end()))
        throw std::invalid_argument("TZif transitions out of order");
    z.offsets_.reserve(c.time);
    for (auto t : type_of) {
        if (t >= utoff.size())
            throw std::invalid_argument("TZif transition to an unknown type");
        z.offsets_.push_back(utoff[t]);
    }
    z.initial_ = utoff[0];
    // A "slim" file stops its transitions early and leaves the rest to the
    // footer's POSIX rule, which we do not evaluate: refuse it rather than
    // apply one offset all year. Debian's files are "fat" (up to 2037).
    r.skip(c.chars + c.leap * 12 + c.isstd + c.isut);
    const auto rest = bytes.substr(bytes.size() - std::min<std::size_t>(bytes.size(), 64));
    const bool rule_with_dst = rest.find(',') != std::string_view::npos;
    constexpr std::int64_t k2030 = 1'893'456'000;
    if (rule_with_dst && (z.transitions_.empty() || z.transitions_.back() < k2030))
        throw std::invalid_argument("a \"slim\" TZif file (transitions end early, daylight saving is in the footer rule): "
                                    "install full tzdata files");
    return z;
}

std::int32_t TimeZone::offset_at(std::int64_t unix_s) const {
    const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
    if (it == transitions_.begin())
        return initial_;
    return offsets_[static_cast<std::size_t>(it - transitions_.begin()) - 1];
}

}  // namespace rlgate::ratelimit
