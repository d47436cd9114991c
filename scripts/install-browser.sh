#!/usr/bin/env bash
# The browser tests (tests/test_web_ui.py) drive a system Chromium with Playwright; nothing is
# downloaded by Playwright itself. This installs Debian's Chromium (and a CJK font, so screenshots
# show Chinese) when it is missing. Elsewhere, set ZHIKU_CHROMIUM to a Chromium or Chrome binary.
set -euo pipefail
if [ -n "${ZHIKU_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "no chromium found and no apt-get here: install Chromium or Chrome and set ZHIKU_CHROMIUM=/path/to/it" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y chromium fonts-wqy-zenhei \
  || { $sudo apt-get update && $sudo apt-get install -y chromium fonts-wqy-zenhei; }
