#!/usr/bin/env bash
# The action's one step (action.yml): install the pinned wsdeploy release for this runner, verify its checksum, run
# `wsdeploy up`, and write the outputs and the step summary. Inputs arrive as WSDEPLOY_ACTION_* variables, never
# pasted into the script, so no input can inject a command.
set -euo pipefail

stage="${WSDEPLOY_ACTION_STAGE:?the stage input is required}"
version="${WSDEPLOY_ACTION_VERSION:?the version input is required (a release tag such as v0.1.0)}"
# A tag, never a path: it names a file below and a directory on the runner.
[[ "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.]+)?$ ]] \
  || { echo "::error title=wsdeploy::the version input is a release tag such as v0.1.0, not $version"; exit 1; }
config="${WSDEPLOY_ACTION_CONFIG:-wsdeploy.yaml}"
repository="${WSDEPLOY_ACTION_REPOSITORY:-wsdeploy/wsdeploy}"
base="${WSDEPLOY_ACTION_BASE_URL:-https://github.com/$repository/releases/download/$version}"
base="${base%/}"
temp="${RUNNER_TEMP:-$(mktemp -d)}"
output="${GITHUB_OUTPUT:-/dev/null}"
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"

fail() {
  echo "::error title=wsdeploy::$*"
  exit 1
}

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) target=x86_64-unknown-linux-musl ;;
  Linux-aarch64 | Linux-arm64) target=aarch64-unknown-linux-musl ;;
  Darwin-x86_64) target=x86_64-apple-darwin ;;
  Darwin-arm64) target=aarch64-apple-darwin ;;
  *) fail "no wsdeploy release for $(uname -s) $(uname -m): use a Linux or macOS runner" ;;
esac

# Of a file, or of standard input without one.
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$@"; else shasum -a 256 "$@"; fi | cut -d' ' -f1
}

# The release workflow attests each archive's build provenance (GitHub's artifact attestations). With `gh` and a
# token (the action passes the job's), the archive must carry one from this repository's workflow; `attestation:
# required` also fails where it cannot be checked, `off` skips it. Answers whether it was checked.
attest() {
  local mode="${WSDEPLOY_ACTION_ATTESTATION:-auto}"
  case "$mode" in
    off) return 1 ;;
    auto | required) ;;
    *) fail "the attestation input is auto, required or off, not $mode" ;;
  esac
  if ! command -v gh >/dev/null 2>&1 || [ -z "${GH_TOKEN:-}" ]; then
    [ "$mode" = required ] && fail "attestation: required, but gh or a token is missing to check $archive's provenance. Nothing was run."
    return 1
  fi
  gh attestation verify "$1" --repo "$repository" >/dev/null \
    || fail "$archive has no valid build provenance from $repository's release workflow. Nothing was run."
}

# The line for $archive in a SHA256SUMS file.
listed_in() {
  awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$1"
}

# The release's SHA256SUMS sits beside the archive it vouches for: whoever can replace one can replace both. So the
# download must also be vouched for from outside the release, by one of: the checksums the release workflow
# committed into this repository when it published the version (action/checksums/<version>; pinning the action to
# a commit that has them pins the archive), the sha256 input (the workflow's own pin), or a verified attestation.
# A version newer than the action's commit has no committed checksums there: pin the action to a commit that has
# them, or let one of the other two vouch.
vouch() {
  local committed pinned
  committed="$(dirname "${BASH_SOURCE[0]}")/checksums/$version"
  if [ -f "$committed" ]; then
    pinned="$(listed_in "$committed")"
    [ -n "$pinned" ] || fail "$archive is not in the checksums committed for $version ($committed). Nothing was run."
    [ "$actual" = "$pinned" ] \
      || fail "checksum mismatch for $archive: the checksums committed for $version when it was published say $pinned, the download (and the release's SHA256SUMS) say $actual: the release changed after it was published. Nothing was run."
    vouched="checksums committed with the action"
  fi
  [ -n "${WSDEPLOY_ACTION_SHA256:-}" ] && vouched="${vouched:+$vouched, }the sha256 input"
  if attest "$download/$archive"; then vouched="${vouched:+$vouched, }build provenance"; fi
  [ -n "$vouched" ] \
    || fail "nothing outside the release vouches for $archive: this commit of the action has no checksums for $version (action/checksums/$version), no sha256 input was given, and its attestation could not be checked (gh or a token missing, or attestation: off). Pin the action to a commit that has $version's checksums, set the sha256 input, or let the attestation be checked. Nothing was run."
}

# The installed binary is the one inside the archive verified at install time (and pinned by the sha256 input, when
# given), checked before each run.
verify_installed() {
  local kept recorded
  kept="$(sha256 "$install/$archive" 2>/dev/null || true)"
  recorded="$(cat "$install/$archive.sha256" 2>/dev/null || true)"
  [ -n "$kept" ] && [ "$kept" = "$recorded" ] \
    || fail "the installed release archive in $install changed since it was verified. Nothing was run."
  if [ -n "${WSDEPLOY_ACTION_SHA256:-}" ] && [ "$kept" != "$WSDEPLOY_ACTION_SHA256" ]; then
    fail "checksum mismatch for $archive: the sha256 input pins $WSDEPLOY_ACTION_SHA256, the download is $kept. Nothing was run."
  fi
  local inside binary
  inside="$(tar -xzOf "$install/$archive" wsdeploy | sha256)"
  binary="$(sha256 "$install/wsdeploy")"
  [ "$inside" = "$binary" ] \
    || fail "the installed wsdeploy ($install/wsdeploy) is not the binary of the verified release (sha256 $binary, the release's is $inside): something changed it after the install step. Nothing was run."
}

# Installed once per version and target on a runner: a second step of the job reuses it. The verified archive is
# kept beside the binary, with its checksum, so that every run hashes the binary again first: a binary changed
# after it was verified (by any step in between: a dependency's install script, say) is never run.
install="$temp/wsdeploy-$version-$target"
archive="wsdeploy-$target.tar.gz"
if [ ! -x "$install/wsdeploy" ]; then
  download="$(mktemp -d "$temp/wsdeploy-download.XXXXXX")"
  trap 'rm -rf "$download"' EXIT
  curl --fail --silent --show-error --location --retry 3 --proto '=https,file' \
    --output "$download/$archive" "$base/$archive" \
    || fail "cannot download $base/$archive: is $version a wsdeploy release with a $target build?"
  curl --fail --silent --show-error --location --retry 3 --proto '=https,file' \
    --output "$download/SHA256SUMS" "$base/SHA256SUMS" \
    || fail "cannot download $base/SHA256SUMS"
  actual="$(sha256 "$download/$archive")"
  listed="$(listed_in "$download/SHA256SUMS")"
  [ -n "$listed" ] || fail "$archive is not listed in $base/SHA256SUMS"
  [ "$actual" = "$listed" ] \
    || fail "checksum mismatch for $archive: SHA256SUMS says $listed, the download is $actual. Nothing was run."
  if [ -n "${WSDEPLOY_ACTION_SHA256:-}" ] && [ "$actual" != "$WSDEPLOY_ACTION_SHA256" ]; then
    fail "checksum mismatch for $archive: the sha256 input pins $WSDEPLOY_ACTION_SHA256, the download is $actual. Nothing was run."
  fi
  vouched=""
  vouch
  echo "wsdeploy: $archive verified ($vouched)"
  mkdir -p "$install"
  cp "$download/$archive" "$install/$archive"
  echo "$actual" >"$install/$archive.sha256"
  tar -xzf "$download/$archive" -C "$install" wsdeploy
fi
verify_installed
echo "$install" >>"${GITHUB_PATH:-/dev/null}"
echo "wsdeploy: $("$install/wsdeploy" --version | tr '\n' ';' | sed 's/;$//; s/;/; /g')"

read -r -a extra <<<"${WSDEPLOY_ACTION_ARGS:-}"
case "${WSDEPLOY_ACTION_COMMAND:-up}" in
  install) exit 0 ;;
  validate | plan)
    exec "$install/wsdeploy" "$WSDEPLOY_ACTION_COMMAND" --config "$config" --stage "$stage" ${extra[@]+"${extra[@]}"} ;;
  up) ;;
  *) fail "the command input is up, plan, validate or install, not ${WSDEPLOY_ACTION_COMMAND}" ;;
esac
result="$temp/wsdeploy-up-$stage.json"
# The JSON document on stdout (no secrets in it: they go to the env files only); progress and errors on stderr.
"$install/wsdeploy" up --config "$config" --stage "$stage" --yes --output json ${extra[@]+"${extra[@]}"} >"$result"

# A top-level field of the JSON document, with whichever reader the runner has (GitHub's runners have all three).
field() {
  if command -v jq >/dev/null 2>&1; then
    jq -r --arg k "$1" '.[$k] // empty' "$result"
  elif command -v python3 >/dev/null 2>&1; then
    python3 -c 'import json,sys; v=json.load(open(sys.argv[1])).get(sys.argv[2]); print("" if v is None else v)' "$result" "$1"
  else
    node -e 'const v=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"))[process.argv[2]]; console.log(v ?? "")' "$result" "$1"
  fi
}
websocket_url="$(field websocket_url)"
management_endpoint="$(field management_endpoint)"
api_id="$(field api_id)"
changes="$(field changes)"
{
  echo "websocket_url=$websocket_url"
  echo "management_endpoint=$management_endpoint"
  echo "api_id=$api_id"
} >>"$output"
{
  echo "### wsdeploy: stage \`$stage\` is up"
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| WebSocket URL | \`$websocket_url\` |"
  echo "| @connections endpoint | \`$management_endpoint\` |"
  echo "| API id | \`$api_id\` |"
  echo "| changes applied | ${changes:-0} |"
  echo "| wsdeploy | $version ($target) |"
} >>"$summary"
