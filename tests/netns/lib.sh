# SPDX-License-Identifier: BSD-2-Clause
# Shared by the netns shell tests (source it). Exit 1 = failed, 77 = skipped;
# with CI=true a missing prerequisite is a failure, never a skip.

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

skip() {
    if [[ "${CI:-}" == true ]]; then
        fail "$* (prerequisites are mandatory with CI=true)"
    fi
    echo "SKIP: $*"
    exit 77
}
