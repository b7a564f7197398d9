// SPDX-License-Identifier: BSD-2-Clause
#include "core/config/redis_settings.hpp"

#include <charconv>

#include "core/net/ip_address.hpp"

namespace rlgate::config {

std::pair<std::string, std::uint16_t> parse_ip_port(const JsonReader& reader, const Json& v, const std::string& path) {
    const auto s = reader.get_string(v, path);
    const auto colon = s.rfind(':');
    if (colon == std::string::npos || colon == 0)
        reader.fail(path, in_quotes(s) + " is not HOST:PORT (e.g. \"127.0.0.1:8081\", \"[::1]:8081\")");
    std::string host = s.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (!net::IpAddress::parse(host))
        reader.fail(path, in_quotes(host) + " is not an IP address (an address, not a name)");
    const auto port_text = s.substr(colon + 1);
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
        reader.fail(path, in_quotes(port_text) + " is not a port (1..65535)");
    return {host, static_cast<std::uint16_t>(port)};
}

std::string password_from_file_text(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.pop_back();
    return text;
}

RedisSettings parse_redis_settings(const JsonReader& reader, const Json& v, const std::string& path) {
    RedisSettings r;
    if (v.contains("address"))
        std::tie(r.host, r.port) = parse_ip_port(reader, v["address"], join(path, "address"));
    if (v.contains("cluster"))
        r.cluster = reader.get_bool(v["cluster"], join(path, "cluster"));
    if (v.contains("seeds")) {
        const auto& seeds = reader.get_array(v["seeds"], join(path, "seeds"));
        if (!r.cluster)
            reader.fail(join(path, "seeds"), "only with \"cluster\": true");
        for (std::size_t i = 0; i < seeds.size(); ++i)
            r.seeds.push_back(parse_ip_port(reader, seeds[i], at_index(join(path, "seeds"), i)));
    }
    if (v.contains("username"))
        r.username = reader.get_string(v["username"], join(path, "username"));
    if (v.contains("password") && v.contains("password_file"))
        reader.fail(join(path, "password"), "give at most one of \"password\" and \"password_file\"");
    if (v.contains("password"))
        r.password = reader.get_string(v["password"], join(path, "password"));
    if (v.contains("password_file"))
        r.password_file = reader.get_abs_path(v["password_file"], join(path, "password_file"));
    if (!r.username.empty() && r.password.empty() && r.password_file.empty())
        reader.fail(join(path, "username"), "an ACL user needs a password");
    if (v.contains("tls"))
        r.tls = reader.get_bool(v["tls"], join(path, "tls"));
    if (v.contains("tls_ca_file"))
        r.tls_ca_file = reader.get_abs_path(v["tls_ca_file"], join(path, "tls_ca_file"));
    if (v.contains("tls_server_name"))
        r.tls_server_name = reader.get_string(v["tls_server_name"], join(path, "tls_server_name"));
    if ((!r.tls_ca_file.empty() || !r.tls_server_name.empty()) && !r.tls)
        reader.fail(join(path, "tls"), "tls_ca_file and tls_server_name need \"tls\": true");
    if (v.contains("prefix")) {
        r.prefix = reader.get_string(v["prefix"], join(path, "prefix"));
        if (r.prefix.size() > 64 || r.prefix.find_first_of("{} \t\r\n") != std::string::npos)
            reader.fail(join(path, "prefix"), "at most 64 characters, without braces or whitespace");
    }
    auto ms_in = [&](const char* name, std::int64_t lo, std::int64_t hi) {
        const auto ns = reader.get_duration(v[name], join(path, name));
        if (ns < static_cast<std::uint64_t>(lo) || ns > static_cast<std::uint64_t>(hi))
            reader.fail(join(path, name), "between " + std::to_string(lo / 1'000'000) + " ms and " +
                                              std::to_string(hi / 1'000'000) + " ms");
        return static_cast<std::int64_t>(ns);
    };
    if (v.contains("connect_timeout"))
        r.connect_timeout_ns = ms_in("connect_timeout", 1'000'000, 10'000'000'000);
    if (v.contains("timeout"))
        r.timeout_ns = ms_in("timeout", 1'000'000, 5'000'000'000);
    if (v.contains("connections"))
        r.connections = static_cast<unsigned>(reader.get_uint_in(v["connections"], join(path, "connections"), 1, 64));
    return r;
}

}  // namespace rlgate::config
