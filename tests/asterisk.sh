#!/usr/bin/env bash
# Builds the Asterisk the project targets (22.10.1, from Debian's source package) into a cache outside
# the checkout, once, and prints the path of its binary on stdout (all progress goes to stderr).
#
#   bash tests/asterisk.sh            # build if needed, print e.g. /root/.cache/cti/asterisk-22.10.1/sbin/asterisk
#   CTI_ASTERISK_CACHE=DIR bash tests/asterisk.sh
#
# Exit status 0: the binary is there (a second run finds the cache and costs about a second).
# Exit status 1: it could not be built; the last lines on stderr say why (the full log is in the cache).
#
# Where the source comes from: Debian's registry carries the exact version as a *source* package in the
# `sid` suite (`asterisk 1:22.10.1+dfsg+~cs6.17.60671434-1`, with its pjproject component tarball). It is
# fetched with `apt-get source` through a private apt configuration (own sources, lists and cache under
# the cache directory; the archive URI is copied from the machine's own sources); the system's apt
# sources are never changed. The build dependencies are bookworm's own packages.
set -euo pipefail

VERSION=22.10.1
DEB_VERSION="1:22.10.1+dfsg+~cs6.17.60671434-1"
CACHE=${CTI_ASTERISK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cti/asterisk-$VERSION}
HERE=$(cd "$(dirname "$0")" && pwd)
JOBS=${CTI_ASTERISK_JOBS:-$(nproc)}

# The modules the tests (and a cti call center) need; everything else is left out of the build. A
# trailing * takes every module of that name prefix. Changing this list (or this script) rebuilds.
MODULES=(
  pbx_config pbx_loopback
  app_queue app_dial app_playback app_read app_exec app_stack app_mixmonitor app_senddtmf app_echo
  app_verbose app_originate app_transfer app_record app_softhangup app_userevent app_waitforsilence
  app_channelredirect app_chanisavail app_directed_pickup app_bridgewait app_milliwatt app_sendtext
  'func_*'
  res_agi res_musiconhold res_rtp_asterisk res_pjproject 'res_pjsip*' chan_pjsip
  res_sorcery_config res_sorcery_memory res_sorcery_astdb res_sorcery_memory_cache res_sorcery_realtime
  res_timing_timerfd res_timing_pthread 'res_format_attr_*' res_crypto res_http_websocket res_clioriginate
  res_convert res_limit res_manager_devicestate res_manager_presencestate res_speech res_audiosocket
  'bridge_*' cdr_manager cel_manager
  codec_ulaw codec_alaw codec_gsm codec_a_mu codec_resample
  format_wav format_gsm format_sln format_pcm format_wav_gsm
)

log() { printf 'asterisk.sh: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The recipe's fingerprint: this script (module list and flags included). A cache built by another
# recipe is rebuilt.
recipe=$(sha256sum "$0" | cut -c1-16)
stamp="$CACHE/.cti-recipe"
if [ -x "$CACHE/sbin/asterisk" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$recipe" ]; then
  echo "$CACHE/sbin/asterisk"
  exit 0
fi

mkdir -p "$(dirname "$CACHE")"
work="$CACHE.build"
buildlog="$CACHE.build.log"
rm -rf "$work"
mkdir -p "$work"
: >"$buildlog"
started=$(date +%s)
log "building Asterisk $VERSION into $CACHE (log: $buildlog); this takes a while once"

fail() {
  log "FAILED: $*"
  tail -n 25 "$buildlog" | sed 's/^/  | /' >&2 || true
  exit 1
}

# 1. Build dependencies, from the machine's own (bookworm) sources.
deps=(build-essential pkg-config bzip2 patch libjansson-dev libxml2-dev libsqlite3-dev uuid-dev libedit-dev
      libssl-dev libncurses-dev dpkg-dev xz-utils)
missing=()
for p in "${deps[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing build dependencies: ${missing[*]}"
  { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" \
    || { as_root apt-get update -q && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"; }; } \
    >>"$buildlog" 2>&1 || fail "could not install the build dependencies (${missing[*]})"
fi

# 2. The source package, through a private apt configuration.
apt="$CACHE.apt"
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"
uri=$(awk '/^URIs:/ && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$uri" ] || uri=$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$uri" ] || uri=http://deb.debian.org/debian
cat >"$apt/sources.list.d/cti-sid-src.sources" <<EOF
Types: deb-src
URIs: $uri
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
aptopts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources.list.d"
         -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root
         -o Debug::NoLocking=1)
log "fetching the source package asterisk=$DEB_VERSION from $uri (sid, deb-src)"
apt-get "${aptopts[@]}" update -q >>"$buildlog" 2>&1 || fail "apt-get update of the private sid deb-src list failed (no network?)"
(cd "$work" && apt-get "${aptopts[@]}" source -q "asterisk=$DEB_VERSION") >>"$buildlog" 2>&1 \
  || fail "apt-get source asterisk=$DEB_VERSION failed"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'asterisk-*' | head -n 1)
[ -n "$src" ] && [ -f "$src/configure" ] || fail "the source package did not unpack"
cd "$src"

# 3. pjproject: the package's component tarball, laid out the way Asterisk's bundled build expects it
#    (as debian/rules does), so nothing is downloaded.
pjver=$(awk '/^PJPROJECT_VERSION=/ {sub(/.*=/, ""); print}' third-party/versions.mak)
externals="$work/externals"
mkdir -p "$externals"
ln -s "$src/Xpjproject" "$externals/pjproject-$pjver"
(cd "$externals" && tar -chf - "pjproject-$pjver" | bzip2 --fast >"pjproject-$pjver.tar.bz2" && rm "pjproject-$pjver") \
  || fail "could not pack pjproject $pjver"
(cd "$externals" && md5sum "pjproject-$pjver.tar.bz2") >"third-party/pjproject/pjproject-$pjver.tar.bz2.md5"

# 4. Configure: no sounds downloads, nothing fetched (Debian's dummy fetch stands in for wget/curl).
chmod 755 debian/dummyprogs/fetch
export PATH="$src/debian/dummyprogs:$PATH" WGET=fetch CURL=fetch
log "configure"
./configure --prefix="$CACHE" --with-pjproject-bundled --with-externals-cache="$externals" \
  --without-pwlib --without-sdl --disable-asteriskssl >>"$buildlog" 2>&1 || fail "configure failed"

# 5. Menuselect: every category off, then exactly our modules (their dependencies must be among them).
make menuselect.makeopts >>"$buildlog" 2>&1 || fail "make menuselect.makeopts failed"
ms=menuselect/menuselect
for cat in MENUSELECT_ADDONS MENUSELECT_APPS MENUSELECT_BRIDGES MENUSELECT_CDR MENUSELECT_CEL MENUSELECT_CHANNELS \
           MENUSELECT_CODECS MENUSELECT_FORMATS MENUSELECT_FUNCS MENUSELECT_PBX MENUSELECT_RES MENUSELECT_TESTS \
           MENUSELECT_UTILS MENUSELECT_AGIS MENUSELECT_CORE_SOUNDS MENUSELECT_MOH MENUSELECT_EXTRA_SOUNDS; do
  $ms --disable-category "$cat" menuselect.makeopts >>"$buildlog" 2>&1 || true
done
# as a production build: no BUILD_NATIVE, and no TEST_FRAMEWORK (Debian's patches turn it on; it adds
# TestEvent AMI events a production Asterisk never sends)
for opt in BUILD_NATIVE TEST_FRAMEWORK; do
  $ms --disable "$opt" menuselect.makeopts >>"$buildlog" 2>&1 || true
done
available=$(grep -o '<member name="[a-z_0-9]*"' menuselect-tree | sed 's/.*name="//; s/"$//')
selected=()
for m in "${MODULES[@]}"; do
  if [[ $m == *'*' ]]; then
    while read -r name; do [ -n "$name" ] && selected+=("$name"); done < <(grep -x "${m%\*}.*" <<<"$available" || true)
  else
    grep -qx "$m" <<<"$available" && selected+=("$m") || log "note: module $m is not in this source tree"
  fi
done
for m in "${selected[@]}"; do $ms --enable "$m" menuselect.makeopts >>"$buildlog" 2>&1 || true; done
$ms --check-deps menuselect.makeopts >>"$buildlog" 2>&1 || true

# 6. Build, install beside the cache, check, then swap it in (a running test keeps the old one until then).
log "make -j$JOBS (${#selected[@]} modules selected)"
make -j"$JOBS" NOISY_BUILD= >>"$buildlog" 2>&1 || fail "make failed"
dest="$work/dest"
make install DESTDIR="$dest" NOISY_BUILD= >>"$buildlog" 2>&1 || fail "make install failed"
new="$dest$CACHE"
for m in app_queue res_agi chan_pjsip res_pjsip pbx_config app_playback app_mixmonitor res_musiconhold format_wav; do
  [ -f "$new/lib/asterisk/modules/$m.so" ] || fail "module $m.so was not built (see $buildlog)"
done
grep -q "TEST_FRAMEWORK" "$src/include/asterisk/buildopts.h" && fail "TEST_FRAMEWORK is still on"
LD_LIBRARY_PATH="$new/lib" "$new/sbin/asterisk" -V >>"$buildlog" 2>&1 || fail "the built binary does not run"
echo "$recipe" >"$new/.cti-recipe"
rm -rf "$CACHE.old"
[ -d "$CACHE" ] && mv "$CACHE" "$CACHE.old"
mv "$new" "$CACHE"
rm -rf "$CACHE.old" "$work"
"$CACHE/sbin/asterisk" -V >/dev/null 2>&1 || fail "the installed binary does not run"
log "built $("$CACHE/sbin/asterisk" -V) in $(( $(date +%s) - started )) s"
echo "$CACHE/sbin/asterisk"
