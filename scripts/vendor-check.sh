#!/usr/bin/env bash
# vendor-check.sh: vendor/zookeeper-client must be the published crate with exactly the differences its PATCHED.md
# lists, so that the copy can be reviewed (and dropped) by reading PATCHED.md alone.
#
# Cargo fetches the published .crate (the version in the vendored Cargo.toml) for a throw-away project locked by the
# workspace's Cargo.lock, so it checks the download against the crates.io index's checksum, and so does this script
# again for the copy in cargo's cache. From it the expected tree is built: the paths PATCHED.md lists as
# "- Removed `PATH`" deleted, every ```diff block of PATCHED.md applied (git apply: no fuzz), PATCHED.md added. It
# must equal vendor/zookeeper-client byte for byte (a `target` folder of a local build aside); the first difference is
# the one-line cause of the failure. Needs cargo, git and the network to crates.io (or cargo's cache).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

vendored=vendor/zookeeper-client
notes="$vendored/PATCHED.md"
fail() {
    echo "vendor-check: $*" >&2
    exit 1
}

[[ -f "$notes" ]] || fail "$notes is missing"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$vendored/Cargo.toml" | head -n 1)"
[[ -n "$version" ]] || fail "no version in $vendored/Cargo.toml"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The throw-away project sits in its own workspace, away from this one's [patch.crates-io].
mkdir -p "$work/fetch/src"
: >"$work/fetch/src/lib.rs"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "vendor-check-fetch"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
zookeeper-client = "=$version"

[workspace]
EOF
# The workspace's lockfile pins every other package, so only zookeeper-client itself can need a download.
cp Cargo.lock "$work/fetch/Cargo.lock"
(cd "$work/fetch" && cargo fetch --quiet) >"$work/fetch.log" 2>&1 ||
    fail "cargo could not fetch zookeeper-client $version: $(grep -m 1 'error' "$work/fetch.log" || true)"
sum="$(awk '$0 == "name = \"zookeeper-client\"" { found = 1 }
            found && $1 == "checksum" { gsub(/"/, "", $3); print $3; exit }' "$work/fetch/Cargo.lock")"
[[ -n "$sum" ]] || fail "no crates.io checksum for zookeeper-client $version in the throw-away Cargo.lock"
crate=""
while IFS= read -r -d '' candidate; do
    if [[ "$(sha256sum "$candidate" | cut -d ' ' -f 1)" == "$sum" ]]; then crate="$candidate"; fi
done < <(find "${CARGO_HOME:-$HOME/.cargo}/registry/cache" -name "zookeeper-client-$version.crate" -print0)
[[ -n "$crate" ]] || fail "no zookeeper-client-$version.crate in cargo's cache has the crates.io checksum $sum"

tar -xzf "$crate" -C "$work"
expected="$work/zookeeper-client-$version"

# The removals PATCHED.md lists, its diffs, and PATCHED.md itself.
# shellcheck disable=SC2016 # the backquotes are PATCHED.md's Markdown, not an expansion
removal='s/^- Removed `\([^`]*\)`.*/\1/p'
removed=0
while IFS= read -r path; do
    [[ "$path" != *..* ]] || fail "PATCHED.md lists \`$path\` as removed: a path outside the crate"
    [[ -e "$expected/$path" ]] || fail "PATCHED.md lists \`$path\` as removed, but the published $version has no $path"
    rm -rf "${expected:?}/$path"
    removed=$((removed + 1))
done < <(sed -n "$removal" "$notes")
awk '/^```/ { inside = ($0 == "```diff"); next } inside' "$notes" >"$work/patch.diff"
[[ -s "$work/patch.diff" ]] || fail "PATCHED.md has no \`\`\`diff block"
# The ceiling keeps git from taking a repository around the temp folder for the tree to patch.
(cd "$expected" && GIT_CEILING_DIRECTORIES="$work" git apply --whitespace=nowarn "$work/patch.diff") \
    >"$work/apply.log" 2>&1 ||
    fail "PATCHED.md's diffs do not apply to the published $version: $(head -n 1 "$work/apply.log")"
cp "$notes" "$expected/PATCHED.md"

# The path in a line of `diff -rq`'s "Only in ROOT/DIR: NAME", relative to ROOT.
only_in() {
    local rest="${2#"Only in $1"}"
    rest="${rest#/}"
    rest="${rest/: //}"
    echo "${rest#/}"
}
if ! diff -rq -x target "$expected" "$vendored" >"$work/diff.txt"; then
    count="$(wc -l <"$work/diff.txt")"
    first="$(head -n 1 "$work/diff.txt")"
    case "$first" in
    "Only in $expected"*)
        cause="$vendored lacks $(only_in "$expected" "$first"), which PATCHED.md does not list as removed"
        ;;
    "Only in $vendored"*)
        cause="$vendored has $(only_in "$vendored" "$first"), which the published $version has not"
        ;;
    *)
        path="${first#"Files $expected/"}"
        path="${path%% and *}"
        cause="$vendored/$path is not the published $version with PATCHED.md's diffs applied"
        ;;
    esac
    ((count == 1)) || cause+=" (and $((count - 1)) more)"
    fail "$cause"
fi
echo "vendor-check: $vendored is zookeeper-client $version (sha256 $sum) with exactly the differences in PATCHED.md" \
    "($removed removals, $(grep -c '^+++ ' "$work/patch.diff") files patched)" >&2
