# SPDX-License-Identifier: BSD-2-Clause
# rlgate_bpf_object(NAME SOURCE): compile a BPF C file with clang against a
# vmlinux.h dumped from the build machine's /sys/kernel/btf/vmlinux (CO-RE
# makes the object portable to other kernels), generate its libbpf skeleton,
# and expose an INTERFACE target `${NAME}_skel` that userspace links.

find_program(RLGATE_BPF_CLANG NAMES clang-14 clang REQUIRED)
find_program(RLGATE_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
set(RLGATE_VMLINUX_BTF "/sys/kernel/btf/vmlinux" CACHE FILEPATH "BTF used to generate vmlinux.h")
# The repository root, from this file's place: the fuzz project (tests/fuzz)
# includes this file too, and its PROJECT_SOURCE_DIR is not the root.
get_filename_component(RLGATE_SOURCE_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)

set(RLGATE_BPF_GEN_DIR "${CMAKE_BINARY_DIR}/bpf-gen")
file(MAKE_DIRECTORY "${RLGATE_BPF_GEN_DIR}")

add_custom_command(
  OUTPUT "${RLGATE_BPF_GEN_DIR}/vmlinux.h"
  COMMAND "${RLGATE_BPFTOOL}" btf dump file "${RLGATE_VMLINUX_BTF}" format c > "${RLGATE_BPF_GEN_DIR}/vmlinux.h.tmp"
  COMMAND ${CMAKE_COMMAND} -E rename "${RLGATE_BPF_GEN_DIR}/vmlinux.h.tmp" "${RLGATE_BPF_GEN_DIR}/vmlinux.h"
  DEPENDS "${RLGATE_VMLINUX_BTF}"
  COMMENT "Generating vmlinux.h from ${RLGATE_VMLINUX_BTF}"
  VERBATIM)
add_custom_target(rlgate_vmlinux_h DEPENDS "${RLGATE_BPF_GEN_DIR}/vmlinux.h")

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(RLGATE_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(RLGATE_BPF_ARCH arm64)
else()
  set(RLGATE_BPF_ARCH ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(rlgate_bpf_object name source)
  get_filename_component(src_abs "${source}" ABSOLUTE)
  set(obj "${RLGATE_BPF_GEN_DIR}/${name}.bpf.o")
  set(skel "${RLGATE_BPF_GEN_DIR}/${name}.skel.h")
  set(dep "${RLGATE_BPF_GEN_DIR}/${name}.bpf.d")
  # -mcpu=v3: 64-bit atomics (compare-and-swap) in map values
  add_custom_command(
    OUTPUT "${obj}"
    COMMAND "${RLGATE_BPF_CLANG}" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${RLGATE_BPF_ARCH}
            -Wall -Werror -Wno-unused-function
            -I "${RLGATE_BPF_GEN_DIR}" -I "${RLGATE_SOURCE_ROOT}/include" -I "${RLGATE_SOURCE_ROOT}/bpf"
            -MD -MF "${dep}" -c "${src_abs}" -o "${obj}"
    DEPFILE "${dep}"
    DEPENDS "${src_abs}" rlgate_vmlinux_h "${RLGATE_BPF_GEN_DIR}/vmlinux.h"
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT "${skel}"
    COMMAND "${RLGATE_BPFTOOL}" gen skeleton "${obj}" name "${name}" > "${skel}.tmp"
    COMMAND ${CMAKE_COMMAND} -E rename "${skel}.tmp" "${skel}"
    DEPENDS "${obj}"
    COMMENT "Skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS "${skel}")
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel SYSTEM INTERFACE "${RLGATE_BPF_GEN_DIR}")
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set_property(GLOBAL APPEND PROPERTY RLGATE_BPF_OBJECTS "${obj}")
endfunction()
