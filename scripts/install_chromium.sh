#!/usr/bin/env bash
# Install Debian's chromium for the HTML report test (tests/test_reports.py renders report.html headless).
# Only as root with apt-get; otherwise say so and leave it to the test, which skips with the reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing chromium (the HTML report test renders the report headless)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
    >/dev/null 2>&1 || echo "setup: could not install chromium; the HTML rendering test will be skipped" >&2
else
  echo "setup: chromium is not installed; the HTML rendering test will be skipped (apt-get install chromium)" >&2
fi
