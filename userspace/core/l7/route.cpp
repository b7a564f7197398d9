// SPDX-License-Identifier: BSD-2-Clause
#include "core/l7/route.hpp"

#include <algorithm>

namespace rlgate::l7 {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    if (const auto q = path.find('?'); q != std::string_view::npos)
        path = path.substr(0, q);
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return out;
}

bool unreserved(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

}  // namespace

int hex_digit(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::string normalize_path(std::string_view path) {
    std::string decoded;
    decoded.reserve(path.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '%' && i + 2 < path.size() && hex_digit(path[i + 1]) >= 0 && hex_digit(path[i + 2]) >= 0) {
            const char c = static_cast<char>(hex_digit(path[i + 1]) * 16 + hex_digit(path[i + 2]));
            if (unreserved(c)) {
                decoded += c;
                i += 2;
                continue;
            }
        }
        decoded += path[i];
    }
    // Backslashes are slashes to some servers; ";params" are dropped by others
    // (servlet containers) before routing: match what the widest reading sees.
    std::replace(decoded.begin(), decoded.end(), '\\', '/');
    if (const auto hash = decoded.find('#'); hash != std::string::npos)
        decoded.resize(hash);  // a fragment is never part of the path
    std::vector<std::string_view> out;
    for (auto seg : split_path(decoded)) {
        if (const auto semi = seg.find(';'); semi != std::string_view::npos)
            seg = seg.substr(0, semi);
        if (seg.empty())
            continue;
        if (seg == ".")
            continue;
        if (seg == "..") {
            if (!out.empty())
                out.pop_back();
            continue;
        }
        out.push_back(seg);
    }
    std::string result;
    for (auto seg : out)
        result.append("/").append(seg);
    if (result.empty() || (!decoded.empty() && decoded.back() == '/' && !out.empty()))
        result += '/';
    return result;
}

std::optional<Route> parse_route(std::string name, std::string_view pattern, std::string* error) {
    auto bad = [&](const std::string& why) -> std::optional<Route> {
        if (error)
            *error = why;
        return std::nullopt;
    };
    const auto space = pattern.find(' ');
    if (space == std::string_view::npos)
        return bad("expected \"METHOD /path\", e.g. \"POST /api/loans/{id}\"");
    Route r;
    r.name = std::move(name);
    r.method = std::string(pattern.substr(0, space));
    const auto path = pattern.substr(space + 1);
    if (!path.starts_with('/'))
        return bad("the path must start with /");
    for (char c : r.method)
        if (!(c >= 'A' && c <= 'Z') && r.method != "*")
            return bad("the method must be upper case (or *)");
    for (auto seg : split_path(path)) {
        if (seg == "*" && !r.segments.empty() && r.segments.back() == "*")
            return bad("* only once, at the end");
        if (seg.starts_with('{') != seg.ends_with('}'))
            return bad("unbalanced {} in " + std::string(seg));
        if (!r.segments.empty() && r.segments.back() == "*")
            return bad("* must be the last segment");
        r.segments.emplace_back(seg);
    }
    return r;
}

const Route* match(const std::vector<Route>& routes, std::string_view method, std::string_view path) {
    const auto segs = split_path(path);
    for (const auto& r : routes) {
        if (r.method != "*" && r.method != method)
            continue;
        std::size_t i = 0;
        bool ok = true;
        for (; i < r.segments.size(); ++i) {
            const auto& p = r.segments[i];
            if (p == "*") {
                i = segs.size();
                break;
            }
            if (i >= segs.size() || (!p.starts_with('{') && p != segs[i]) || segs[i].empty()) {
                ok = false;
                break;
            }
        }
        if (ok && i == segs.size())
            return &r;
    }
    return nullptr;
}

}  // namespace rlgate::l7
