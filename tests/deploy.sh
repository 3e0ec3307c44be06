#!/bin/bash
# tests/deploy.sh: the deployment files (deploy/) agree with the programs
# (issue 21 item 6). They cannot be run here (no Docker, no cluster), so
# what they assume is checked against the built programs:
#  - every program they run exists and answers --help with exit 0;
#  - every SLUICE_ variable they set names a flag in that program's --help,
#    and the program starts with those variables (names resolved through a
#    hosts file: SLUICE_HOSTS), then its probe paths answer 200;
#  - the port in SLUICE_LISTEN is the containerPort / the Service's port /
#    the compose port, and each upstream URL names a service and its port;
#  - terminationGracePeriodSeconds (k8s) and stop_grace_period (compose)
#    cover the preStop sleep + SLUICE_PRESTOP_MS + SLUICE_GRACE_MS + 0.5 s;
#  - the Dockerfile is multi-stage on Debian bookworm, installs with
#    make install DESTDIR, and its runtime packages hold every shared
#    library the installed programs load (ldd + dpkg -S).
# Bounded: each program start waits at most 15 s; all are stopped by pid.
set -u
top=${srcdir:-.}
bld=$(pwd)
fail=0
starts=0
pids=()
tmp=$(mktemp -d /tmp/sl-deploy-XXXXXX)
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
bad() { echo "deploy.sh: FAIL: $*" >&2; fail=1; }

prog_path() {
  case $1 in
    order-svc|inventory-svc|payment-svc) echo "$bld/services/${1%-svc}/$1" ;;
    sluice-load) echo "$bld/services/load/sluice-load" ;;
    sluice-demo) echo "$bld/services/demo/sluice-demo" ;;
    *) echo "" ;;
  esac
}

# GET path from 127.0.0.1:port; prints the status
http_status() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$1" || { echo 0; return; }
  printf 'GET %s HTTP/1.0\r\nHost: t\r\n\r\n' "$2" >&3
  read -r -t 5 line <&3
  exec 3<&- 3>&-
  echo "$line" | cut -d' ' -f2
}

printf '127.0.0.1 order inventory payment\n' > "$tmp/hosts"

# Emits "FILE PROG VAR VALUE" for every SLUICE_ variable, under the
# program of the nearest command: ["..."] above it (both styles: compose's
# "SLUICE_X: v" and k8s's "- name: SLUICE_X" + "value: v").
vars_of() {
  awk -v f="$1" '
    /command: \["/ { match($0, /\["[^"]+"/); prog = substr($0, RSTART + 2, RLENGTH - 3) }
    /^ *SLUICE_[A-Z_]+: / { v = $0; sub(/^ *SLUICE_[A-Z_]+: */, "", v); gsub(/"/, "", v)
                            n = $1; sub(/:$/, "", n); print f, prog, n, v }
    /- name: SLUICE_/ { n = $3; getline; v = $0; sub(/^ *value: */, "", v); gsub(/"/, "", v); print f, prog, n, v }
  ' "$1"
}

files=("$top/deploy/compose.yaml" "$top/deploy/k8s/"*.yaml)
all=$(for f in "${files[@]}"; do vars_of "$f"; done)
[ -n "$all" ] || bad "no SLUICE_ variables found in deploy/"

# ---- programs, flags, variables ----------------------------------------------------
for prog in $(echo "$all" | awk '{print $2}' | sort -u); do
  p=$(prog_path "$prog")
  [ -n "$p" ] && [ -x "$p" ] || { bad "$prog: no such program"; continue; }
  "$p" --help > "$tmp/help" 2>&1 || bad "$prog --help did not exit 0"
  for var in $(echo "$all" | awk -v p="$prog" '$2 == p {print $3}' | sort -u); do
    flag=--$(echo "${var#SLUICE_}" | tr 'A-Z_' 'a-z-')
    grep -q -- "\\[$flag[] ]" "$tmp/help" || bad "$prog: $var names $flag, which its --help does not show"
  done
done

# ---- each service started as a file describes it: probes answer --------------------
for f in "${files[@]}"; do
  for prog in $(vars_of "$f" | awk '{print $2}' | sort -u); do
    p=$(prog_path "$prog")
    [ -x "$p" ] || continue
    envs=(SLUICE_HOSTS="$tmp/hosts" SLUICE_PRESTOP_MS=0)
    while read -r _ _ var val; do
      case $var in SLUICE_LISTEN|SLUICE_PRESTOP_MS) continue ;; esac
      envs+=("$var=$val")
    done < <(vars_of "$f" | awk -v p="$prog" '$2 == p')
    # a new output file per start: the redirection is made in the child,
    # so on a loaded machine the loop below could read the file before the
    # child truncated it and take the PREVIOUS program's "listening on"
    # line -- a port nobody listens on any more, refused for 15 s
    starts=$((starts + 1))
    out="$tmp/out.$starts" err="$tmp/err.$starts"
    env "${envs[@]}" SLUICE_LISTEN=127.0.0.1:0 "$p" > "$out" 2> "$err" &
    pid=$!
    pids+=("$pid")
    port=""
    for _ in $(seq 150); do
      port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$out" 2>/dev/null)
      [ -n "$port" ] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1   # polls for the line, up to 15 s
    done
    if [ -z "$port" ]; then
      bad "$prog with the variables of $f did not start: $(head -c 300 "$err")"
      continue
    fi
    paths=$(grep -o 'path: /[a-z]*' "$f" | awk '{print $2}'; grep -o 'GET /[a-z]* HTTP' "$f" | awk '{print $2}')
    [ -n "$paths" ] || bad "$f names no probe path"
    for path in $(echo "$paths" | sort -u); do
      # readiness may follow "listening on" (the store opens, the outbox is
      # replayed) and a loaded machine answers late: wait for the 200, up to
      # 15 s, instead of failing on the first look
      for _ in $(seq 30); do
        st=$(http_status "$port" "$path")
        [ "$st" = 200 ] && break
        sleep 0.5
      done
      if [ "$st" != 200 ]; then   # say whether it is still there, and what it printed
        alive=gone; kill -0 "$pid" 2>/dev/null && alive=alive
        bad "$prog ($f): GET $path answered '$st', not 200 (15 s); the process is $alive; port $port; its stderr: $(tail -c 600 "$err")"
      fi
    done
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && bad "$prog did not exit within 15 s of SIGTERM"
  done
done

# ---- ports and names ------------------------------------------------------------------
for f in "$top/deploy/k8s/"*.yaml; do
  lport=$(vars_of "$f" | awk '$3 == "SLUICE_LISTEN" {print $4}' | sed 's/.*://')
  cport=$(sed -n 's/^ *containerPort: *//p' "$f")
  sport=$(sed -n 's/^ *port: *\([0-9]*\)$/\1/p' "$f")
  [ -n "$lport" ] && [ "$lport" = "$cport" ] && [ "$lport" = "$sport" ] ||
    bad "$f: SLUICE_LISTEN port '$lport', containerPort '$cport', Service port '$sport' differ"
done
svc_port() {   # the port a service NAME listens on, per the file
  if [ "$1" = compose ]; then
    vars_of "$top/deploy/compose.yaml" | awk -v p="$2-svc" '$2 == p && $3 == "SLUICE_LISTEN" {print $4}' | sed 's/.*://'
  else
    [ -f "$top/deploy/k8s/$2.yaml" ] && sed -n 's/^ *port: *\([0-9]*\)$/\1/p' "$top/deploy/k8s/$2.yaml"
  fi
}
while read -r f prog var val; do
  case $var in SLUICE_INVENTORY|SLUICE_PAYMENT|SLUICE_ORDER) ;; *) continue ;; esac
  kind=k8s; case $f in *compose.yaml) kind=compose ;; esac
  for url in ${val//,/ }; do
    hp=${url#http://}; name=${hp%%:*}; port=${hp##*:}
    [ "$(svc_port "$kind" "$name")" = "$port" ] || bad "$f: $prog's $var=$url: no service '$name' on port $port"
  done
done <<< "$all"
for f in "$top/deploy/k8s/"*.yaml; do
  case $f in *order.yaml) continue ;; esac
  grep -q 'clusterIP: None' "$f" || bad "$f: not headless (the client needs every replica's address)"
done

# ---- the drain fits the grace the orchestrator gives -------------------------------
for f in "$top/deploy/k8s/"*.yaml; do
  tg=$(sed -n 's/^ *terminationGracePeriodSeconds: *//p' "$f")
  sl=$(sed -n 's/.*command: \["sleep", "\([0-9]*\)"\].*/\1/p' "$f")
  pre=$(vars_of "$f" | awk '$3 == "SLUICE_PRESTOP_MS" {print $4}')
  gr=$(vars_of "$f" | awk '$3 == "SLUICE_GRACE_MS" {print $4}')
  [ -n "$tg" ] && [ -n "$pre" ] && [ -n "$gr" ] || { bad "$f: grace, prestop or preStop missing"; continue; }
  [ $((tg * 1000)) -ge $((${sl:-0} * 1000 + pre + gr + 500)) ] ||
    bad "$f: terminationGracePeriodSeconds $tg < preStop ${sl:-0} s + $pre ms + $gr ms + 0.5 s"
done
sg=$(sed -n 's/^ *stop_grace_period: *\([0-9]*\)s$/\1/p' "$top/deploy/compose.yaml")
while read -r f prog var val; do
  case $f in *compose.yaml) ;; *) continue ;; esac
  [ "$var" = SLUICE_GRACE_MS ] || continue
  pre=$(vars_of "$f" | awk -v p="$prog" '$2 == p && $3 == "SLUICE_PRESTOP_MS" {print $4}')
  [ -n "$sg" ] && [ $((sg * 1000)) -ge $((${pre:-2000} + val + 500)) ] ||
    bad "compose: stop_grace_period '${sg}s' < $prog's drain (${pre:-2000} + $val + 500 ms)"
done <<< "$all"

# ---- the image -------------------------------------------------------------------------
df="$top/deploy/Dockerfile"
[ "$(grep -c '^FROM debian:bookworm' "$df")" -ge 2 ] || bad "Dockerfile: not two Debian bookworm stages"
grep -q 'make install DESTDIR=' "$df" || bad "Dockerfile: no make install DESTDIR"
grep -q '\./bootstrap' "$df" || bad "Dockerfile: does not build with ./bootstrap"
runtime=$(awk '/^FROM debian:bookworm-slim/ {r = 1} r' "$df" | tr -s ' \\' '\n' | grep -E '^lib[a-z0-9.+-]+$')
if command -v dpkg > /dev/null && command -v ldd > /dev/null; then
  libs=$(for prog in order-svc inventory-svc payment-svc sluice-load sluice-demo; do
           ldd "$(prog_path $prog)" | awk '/=> \// {print $3}'; done | sort -u)
  # one dpkg -S for all (each call reads its whole database)
  reals=$(for lib in $libs; do readlink -f "$lib"; done)
  owners=$(dpkg -S $reals 2> /dev/null)
  for real in $reals; do
    pkg=$(echo "$owners" | awk -v f="$real" '$2 == f {print $1}' | head -1 | cut -d: -f1)
    # libc6 and libgcc-s1 are in every Debian image; the sanitizers'
    # runtimes (and the libstdc++ they load) come only with a
    # --enable-sanitizers/--enable-tsan build, which no image is made of
    case $pkg in libc6|libgcc-s1|libasan*|libubsan*|libtsan*|liblsan*|libstdc++6|"") continue ;; esac
    echo "$runtime" | grep -qx "$pkg" || bad "Dockerfile: the programs load $real ($pkg), not in the runtime stage"
  done
else
  echo "deploy.sh: no dpkg/ldd: the runtime libraries are not checked"
fi
grep -q '^EXPOSE 8081 8082 8083' "$df" || bad "Dockerfile: EXPOSE 8081 8082 8083 expected"

[ $fail = 0 ] && echo "deploy.sh: deploy/ agrees with the programs"
exit $fail
