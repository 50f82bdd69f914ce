# shellcheck shell=bash
# A private PostgreSQL cluster for tests (source this file).
#
#   pg_start DIR PORT [-c opt=value ...]  initdb (as nobody) in DIR/data, start it on
#                                         127.0.0.1:PORT with its socket in DIR; sets PG_BIN,
#                                         PG_URL (libpq conninfo: host=DIR port=PORT user=jit)
#   pg_stop DIR [mode]                    pg_ctl stop (-m fast by default; immediate = crash)
#
# initdb refuses root: the cluster runs as `nobody`, in a 0700 DIR it owns (DIR's parents
# must be searchable by nobody). Trust authentication (the tests' own loopback and socket);
# fsync is off unless the caller passes -c fsync=on (a killed server loses nothing without
# a machine crash). Never the default port 5432, never a system cluster.

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -n "$d" ] && [ -x "$d/initdb" ] || { echo "pg.sh: no PostgreSQL server (apt-get install postgresql-15)" >&2; return 1; }
  echo "$d"
}

pg_start() { # DIR PORT [-c opt=value ...]
  local dir=$1 port=$2
  shift 2
  [ "$port" != 5432 ] || { echo "pg.sh: never the default port 5432" >&2; return 1; }
  PG_BIN=$(pg_bin) || return 1
  install -d -o nobody -g nogroup -m 700 "$dir"
  if [ ! -e "$dir/data/PG_VERSION" ]; then
    runuser -u nobody -- "$PG_BIN/initdb" -D "$dir/data" -U jit -A trust -E UTF8 --locale=C \
      --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  fi
  runuser -u nobody -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
    -o "-k $dir -c listen_addresses=127.0.0.1 -p $port -c max_connections=300 -c fsync=off $*" \
    start >/dev/null || { tail -20 "$dir/log" >&2; return 1; }
  PG_URL="host=$dir port=$port user=jit"
  export PG_BIN PG_URL
}

pg_stop() { # DIR [mode]
  local dir=$1 mode=${2:-fast}
  [ -n "${PG_BIN:-}" ] || PG_BIN=$(pg_bin) || return 1
  [ -e "$dir/data/postmaster.pid" ] || return 0
  runuser -u nobody -- "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 60 stop >/dev/null
}

# A free TCP port on 127.0.0.1 in [FROM, TO] (default 25400-25999): none listening there.
pg_free_port() { # [FROM TO]
  local from=${1:-25400} to=${2:-25999} p
  for ((p = from; p <= to; p++)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  return 1
}
