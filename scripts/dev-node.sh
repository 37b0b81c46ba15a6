# Sourced by the benchmark scripts: `start_dev_node NODE BASE` starts NODE as a fresh dev chain
# on ParityDB in BASE, with a pool large enough for a whole load run's backlog (the defaults,
# 8,192 transactions and 20 MiB, drop part of it), waits for its RPC, and sets `node_pid` and
# `node_url`. The node logs to BASE/node.log.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_dev_node() {
	local node="$1" base="$2" port
	port=$(free_port)
	"$node" --dev --database paritydb --base-path "$base" --rpc-port "$port" --port "$(free_port)" \
		--no-telemetry --no-prometheus --no-mdns \
		--pool-limit "${POOL_LIMIT:-65536}" --pool-kbytes "${POOL_KBYTES:-262144}" \
		2>"$base/node.log" &
	node_pid=$!
	node_url="ws://127.0.0.1:$port"
	for _ in $(seq 1 240); do
		curl -s -o /dev/null "http://127.0.0.1:$port" -H 'Content-Type: application/json' \
			-d '{"id":1,"jsonrpc":"2.0","method":"system_health","params":[]}' && return 0
		sleep 0.5
	done
	echo "the dev node did not answer on port $port; see $base/node.log" >&2
	return 1
}
