# Sourced by bench/ab-ca.sh and bench/long-rss.sh: bench/run.sh's load CA, made small.
# bench_load_ca JIT_CA JIT_BENCH DIR IDS: a CA in DIR (64 users bench00..bench63 of group
# bench with keys in IDS, max_active_grants_per_user = 100000, the auto-approved `load` role
# on load-*).
bench_load_ca() {
  local jit_ca=$1 jit_bench=$2 dir=$3 ids=$4 i n
  "$jit_ca" init --dir "$dir" >/dev/null
  sed -i 's/^max_active_grants_per_user = .*/max_active_grants_per_user = 100000/' "$dir/config.toml"
  cat > "$dir/policy.toml" <<'P'
[roles.load]
principals = []
hosts = ["load-*"]
sudo = true
max_duration = "1h"
requesters = ["group:bench"]
auto_approve = true
require_reason = false
extensions = ["permit-pty"]
P
  "$jit_bench" keys --out "$ids" --count 64 >/dev/null
  for ((i = 0; i < 64; i++)); do
    n=$(printf 'bench%02d' "$i")
    "$jit_ca" user add "$n" --key "$ids/$n.pub" --group bench --dir "$dir" >/dev/null
  done
}
