#!/usr/bin/env bash
# Validates the CloudFormation/SAM templates in infra/ with cfn-lint (PyPI), installing it into a
# venv under the user's cache on first use (the same kind of venv scripts/moto.sh uses), and checks
# that infra/CAPACITY.md shows what infra/capacity.py computes.
#
#   infra/lint.sh                    # lints infra/template.yaml
#   infra/lint.sh path/to/other.yaml
#
# CFN_LINT_VERSION picks the release, CFN_LINT_VENV the venv. cfn-lint's exit code is a bit set
# (2 error, 4 warning, 8 informational; 1 a failure of cfn-lint itself): this fails on anything but
# informational findings, which are printed and allowed.
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION="${CFN_LINT_VERSION:-1.58.0}"
CFN_LINT_VENV="${CFN_LINT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/ordernimbus/cfn-lint-venv}"
python="$CFN_LINT_VENV/bin/python"

installed_version() {
  [[ -x "$CFN_LINT_VENV/bin/cfn-lint" ]] || return 0
  "$python" -c 'from importlib.metadata import version; print(version("cfn-lint"))' 2>/dev/null || true
}

if [[ "$(installed_version)" != "$CFN_LINT_VERSION" ]]; then
  echo "installing cfn-lint==$CFN_LINT_VERSION into $CFN_LINT_VENV" >&2
  python3 -m venv "$CFN_LINT_VENV" >&2
  "$python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" >&2
fi

# CAPACITY.md's tables are capacity.py's output; the two must not drift apart.
python3 infra/capacity.py --check

templates=("$@")
if [[ ${#templates[@]} -eq 0 ]]; then
  templates=(infra/template.yaml)
fi

"$CFN_LINT_VENV/bin/cfn-lint" --version
status=0
"$CFN_LINT_VENV/bin/cfn-lint" -- "${templates[@]}" || status=$?
if (( status & ~8 )); then
  echo "cfn-lint failed (exit $status: 1 = cfn-lint itself failed, 2 = errors, 4 = warnings)" >&2
  exit 1
fi
if (( status & 8 )); then
  echo "cfn-lint: informational findings only (allowed)" >&2
fi
echo "cfn-lint: ${templates[*]} clean"
