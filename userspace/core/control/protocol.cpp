// SPDX-License-Identifier: BSD-2-Clause
#include "core/control/protocol.hpp"

namespace rlgate::control {

Request parse_request(std::string_view line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded())
        throw ProtocolError(code::bad_json, "request is not valid JSON");
    if (!j.is_object())
        throw ProtocolError(code::bad_request, "request must be a JSON object");
    Request r;
    if (auto it = j.find("id"); it != j.end())
        r.id = *it;
    auto v = j.find("v");
    if (v == j.end() || !v->is_number_integer())
        throw ProtocolError(code::bad_request, "missing protocol version \"v\"");
    if (v->get<long long>() != kProtocolVersion)
        throw ProtocolError(code::unsupported_version,
                            "protocol version " + v->dump() + " not supported (this daemon speaks " +
                                std::to_string(kProtocolVersion) + ")");
    auto cmd = j.find("cmd");
    if (cmd == j.end() || !cmd->is_string() || cmd->get_ref<const std::string&>().empty())
        throw ProtocolError(code::bad_request, "missing command \"cmd\"");
    r.command = cmd->get<std::string>();
    if (auto a = j.find("args"); a != j.end()) {
        if (!a->is_object())
            throw ProtocolError(code::bad_request, "\"args\" must be an object");
        r.args = *a;
    }
    return r;
}

json make_request(const std::string& command, json args, json id) {
    return json{{"v", kProtocolVersion}, {"id", std::move(id)}, {"cmd", command}, {"args", std::move(args)}};
}

json make_result(const json& id, json result) {
    return json{{"v", kProtocolVersion}, {"id", id}, {"ok", true}, {"result", std::move(result)}};
}

json make_error(const json& id, const std::string& code, const std::string& message, json details) {
    json err{{"code", code}, {"message", message}};
    if (!details.is_null())
        err["details"] = std::move(details);
    return json{{"v", kProtocolVersion}, {"id", id}, {"ok", false}, {"error", std::move(err)}};
}

std::optional<std::string> arg_optional_string(const json& args, const char* name) {
    auto it = args.find(name);
    if (it == args.end() || it->is_null())
        return std::nullopt;
    if (!it->is_string())
        throw ProtocolError(code::invalid_argument, std::string("argument \"") + name + "\" must be a string");
    return it->get<std::string>();
}

std::string arg_string(const json& args, const char* name) {
    auto v = arg_optional_string(args, name);
    if (!v)
        throw ProtocolError(code::invalid_argument, std::string("missing argument \"") + name + "\"");
    return *v;
}

std::uint64_t arg_uint(const json& args, const char* name, std::uint64_t fallback) {
    auto it = args.find(name);
    if (it == args.end() || it->is_null())
        return fallback;
    if (!it->is_number_unsigned())
        throw ProtocolError(code::invalid_argument,
                            std::string("argument \"") + name + "\" must be a non-negative integer");
    return it->get<std::uint64_t>();
}

bool arg_bool(const json& args, const char* name, bool fallback) {
    auto it = args.find(name);
    if (it == args.end() || it->is_null())
        return fallback;
    if (!it->is_boolean())
        throw ProtocolError(code::invalid_argument, std::string("argument \"") + name + "\" must be true or false");
    return it->get<bool>();
}

LineSplitter::Status LineSplitter::next(std::string& out) {
    for (;;) {
        const auto nl = pending_.find('\n');
        if (discarding_) {
            if (nl == std::string::npos) {
                pending_.clear();
                return Status::need_more;
            }
            pending_.erase(0, nl + 1);
            discarding_ = false;
            continue;
        }
        if (nl == std::string::npos) {
            if (pending_.size() > max_) {
                pending_.clear();
                discarding_ = true;
                return Status::oversized;
            }
            return Status::need_more;
        }
        if (nl > max_) {
            pending_.erase(0, nl + 1);
            return Status::oversized;
        }
        out.assign(pending_, 0, nl);
        pending_.erase(0, nl + 1);
        if (!out.empty() && out.back() == '\r')
            out.pop_back();
        if (out.find_first_not_of(" \t") == std::string::npos)
            continue;  // blank lines are keep-alives
        return Status::line;
    }
}

}  // namespace rlgate::control
