#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing (CI runs as root).
set -euo pipefail
need=()
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
# (grep reads all of its input: with pipefail, `grep -q` exiting early would fail the pipeline on SIGPIPE)
fc-list 2>/dev/null | grep -i "cjk\|wqy\|noto sans sc" >/dev/null || need+=(fonts-noto-cjk)
# credit reports embed a TrueType Chinese font (serving/report_pdf.py: fpdf2 writes CFF fonts with an
# encoding text extractors cannot read) and their tests render page 1 with pdftoppm
[ -n "$(fc-list ':lang=zh-cn:fontformat=TrueType' 2>/dev/null)" ] || need+=(fonts-wqy-zenhei)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
if [ ${#need[@]} -gt 0 ]; then
  echo "system-deps: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
