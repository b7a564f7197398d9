// SPDX-License-Identifier: BSD-2-Clause
// The dataplane's one error policy: every failed kernel/libbpf call throws a
// BpfError naming the operation, the object, and the errno in words.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace rlgate {

class BpfError : public std::system_error {
public:
    BpfError(int err, const std::string& what) : std::system_error(err < 0 ? -err : err, std::generic_category(), what) {}
};

// libbpf returns -errno (or sets errno and returns -1): normalise and throw.
inline void check_bpf(int ret, const std::string& what) {
    if (ret < 0)
        throw BpfError(ret == -1 && errno ? errno : -ret, what);
}

}  // namespace rlgate
