// SPDX-License-Identifier: BSD-2-Clause
// Endpoint classes by method and route pattern ("POST /api/loans/{id}",
// "GET /static/*"): the first matching route names the endpoint of a
// request, so limits apply per endpoint, not per URL. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rlgate::l7 {

struct Route {
    std::string name;    // endpoint class, e.g. "loans.update"
    std::string method;  // "*" for any
    std::vector<std::string> segments;  // literal, "{param}" (one segment) or "*" (the rest)
};

// "POST /api/loans/{id}" -> Route; nullopt with `error` on a malformed pattern.
std::optional<Route> parse_route(std::string name, std::string_view pattern, std::string* error = nullptr);

// The value of a hexadecimal digit, or -1 (percent-decoding paths and queries).
int hex_digit(char c);

// The path as an application resolves it before routing: unreserved
// characters percent-decoded ("%6C" -> "l"; "%2F" stays), "." and ".."
// segments resolved, empty segments dropped. Matching works on this form, so
// an endpoint's limit cannot be dodged by spelling its path differently.
std::string normalize_path(std::string_view path);

// The first route matching `method` and `path` (query stripped, no
// percent-decoding of '/': "/a%2Fb" is one segment), or nullptr.
const Route* match(const std::vector<Route>& routes, std::string_view method, std::string_view path);

}  // namespace rlgate::l7
