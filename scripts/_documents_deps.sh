# Shared by scripts/run and scripts/test: the Debian packages documents need, installed
# only when missing (WeasyPrint: Pango and a font; delivery: GnuPG 2; tests: openssl;
# translations: gettext's msgfmt, which `manage.py compilemessages` runs).
missing=()
command -v gpg >/dev/null 2>&1 || missing+=(gnupg)
command -v gpgconf >/dev/null 2>&1 || missing+=(gnupg-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v msgfmt >/dev/null 2>&1 || missing+=(gettext)
if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then
  missing+=(libpango-1.0-0 libpangoft2-1.0-0)
fi
for font in DejaVuSans DejaVuSansMono; do
  [ -e "/usr/share/fonts/truetype/dejavu/$font.ttf" ] || missing+=(fonts-dejavu-core)
done
if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "==> Installing Debian packages for documents: ${missing[*]}"
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
