// SPDX-License-Identifier: BSD-2-Clause
// Crash-safe file replacement: write a temporary file, fsync it, rename it
// over the target and fsync the directory. Either the old or the new
// content survives a crash or a full disk, never a torn mix.
#pragma once

#include <string>
#include <string_view>

namespace rlgate::daemon {

// Throws std::system_error; the target is untouched on failure.
void write_file_atomically(const std::string& path, std::string_view content, unsigned mode = 0600);

// Whole file, or throws std::system_error naming the path.
std::string read_file(const std::string& path);

}  // namespace rlgate::daemon
