#!/usr/bin/env bash
# Offline checks of the CDK app: synth dev + prod (cdk-nag gates the synth),
# cfn-lint and checkov over the templates, run tests/infra. No AWS account needed.
#
#   bash infra/check.sh               # from anywhere
#   INFRA_CHALICE_SOURCE=/path bash infra/check.sh   # package another Chalice project (stub tryouts)
#
# Idempotent: the venv and node_modules are reinstalled only when their pins change.
set -euo pipefail

INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$INFRA_DIR")"
cd "$INFRA_DIR"

VENV="$INFRA_DIR/.venv"
PY="$VENV/bin/python"
CDK="$INFRA_DIR/node_modules/.bin/cdk"
CDK_VERSION="2.1148.1"
OUT="$INFRA_DIR/cdk.out"

# Dummy credentials: synth never calls AWS; chalice and the CDK CLI only want them present.
export AWS_ACCESS_KEY_ID=dummy AWS_SECRET_ACCESS_KEY=dummy AWS_DEFAULT_REGION=eu-central-1
export CDK_DEFAULT_ACCOUNT=111111111111 CDK_DEFAULT_REGION=eu-central-1
unset AWS_PROFILE AWS_SESSION_TOKEN || true
# Node 20 (this machine) is past its jsii end-of-life date; synth still works, so keep the log readable.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1 NODE_NO_WARNINGS=1 CDK_DISABLE_CLI_TELEMETRY=true
export PIP_DISABLE_PIP_VERSION_CHECK=1
# `chalice package` keys its dependency cache (../.chalice/deployments) on the bytes of
# app.py + chalicelib/ (including __pycache__): importing the app must not write .pyc
# files there, or the prod synth would miss the cache the dev synth just filled.
export PYTHONDONTWRITEBYTECODE=1

T0=$SECONDS
step_start=$SECONDS
step() { step_start=$SECONDS; echo "==> $*"; }
done_step() { echo "    ($(( SECONDS - step_start ))s)"; }

# ---- 1. Python venv ------------------------------------------------------------------
step "python venv ($VENV)"
if [[ ! -x "$PY" ]]; then
  python3 -m venv "$VENV"
fi
# The app's own requirements go in too: `chalice package` imports app.py at synth.
req_files=("$INFRA_DIR/requirements.txt")
[[ -f "$REPO_ROOT/requirements.txt" ]] && req_files+=("$REPO_ROOT/requirements.txt")
want_hash="$(cat "${req_files[@]}" | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.requirements.sha256"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want_hash" ]]; then
  pip_args=()
  for f in "${req_files[@]}"; do pip_args+=(-r "$f"); done
  "$PY" -m pip install --quiet "${pip_args[@]}" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want_hash" > "$stamp"
else
  echo "    up to date"
fi
done_step

# ---- 2. CDK CLI ---------------------------------------------------------------------
step "CDK CLI aws-cdk@$CDK_VERSION (node_modules)"
if [[ ! -x "$CDK" ]] || [[ "$("$CDK" --version 2>/dev/null | cut -d' ' -f1)" != "$CDK_VERSION" ]]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  echo "    up to date"
fi
done_step

# ---- 3. synth both stages (cdk-nag runs inside; a finding fails the synth) -----------
context_args=()
if [[ -n "${INFRA_CHALICE_SOURCE:-}" ]]; then
  context_args+=(-c "chalice_source=$INFRA_CHALICE_SOURCE")
fi
rm -rf "$INFRA_DIR/chalice.out"
for stage in dev prod; do
  step "cdk synth stage=$stage"
  rm -rf "${OUT:?}/$stage"
  "$CDK" synth --quiet --no-lookups --no-version-reporting --no-notices --ci \
    -c "stage=$stage" "${context_args[@]}" -o "$OUT/$stage"
  test -s "$OUT/$stage/clinic-backend-$stage.template.json"
  done_step
done
rm -rf "$INFRA_DIR/chalice.out"

# ---- 4. cfn-lint --------------------------------------------------------------------
step "cfn-lint"
"$VENV/bin/cfn-lint" --config-file "$INFRA_DIR/.cfnlintrc" -- "$OUT"/dev/*.template.json "$OUT"/prod/*.template.json
done_step

# ---- 5. checkov ---------------------------------------------------------------------
# Every function, the API and the rest, which cdk-nag's Lambda and API Gateway rules skip
# (they do not read the AWS::Serverless::* resources Chalice emits). Its own venv
# (infra/.checkov): its pins would fight the CDK venv's. Offline: no mapping download,
# no policy download. Each skip is on its resource in the template, with its reason
# (checkov_skip in infra/clinic_stack.py); nothing is skipped here globally.
step "checkov"
CHECKOV_VENV="$INFRA_DIR/.checkov"
if [[ ! -x "$CHECKOV_VENV/bin/checkov" ]]; then
  python3 -m venv "$CHECKOV_VENV"
fi
ck_hash="$(sha256sum "$INFRA_DIR/requirements-checkov.txt" | cut -d' ' -f1)"
if [[ ! -f "$CHECKOV_VENV/.requirements.sha256" || "$(cat "$CHECKOV_VENV/.requirements.sha256")" != "$ck_hash" ]]; then
  "$CHECKOV_VENV/bin/pip" install --quiet -r "$INFRA_DIR/requirements-checkov.txt" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$ck_hash" > "$CHECKOV_VENV/.requirements.sha256"
fi
export BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false
for stage in dev prod; do
  "$CHECKOV_VENV/bin/checkov" --skip-download --quiet --compact --framework cloudformation \
    -f "$OUT/$stage/clinic-backend-$stage.template.json"
done
done_step

# ---- 6. tests -----------------------------------------------------------------------
step "pytest tests/infra"
cd "$REPO_ROOT"
"$PY" -m pytest -q -p no:cacheprovider tests/infra
done_step

rm -rf "$INFRA_DIR/chalice.out"
# Keep only the newest few cached Lambda bundles (about 30 MB each).
if [[ -d "$REPO_ROOT/.chalice/deployments" ]]; then
  ls -1t "$REPO_ROOT"/.chalice/deployments/*.zip 2>/dev/null | tail -n +5 | xargs -r rm -f
fi
echo "infra checks passed in $(( SECONDS - T0 ))s"
