-- wrk script of bench/run.sh: one request, sent over and over on every
-- connection, taken from the environment so that secrets stay out of the
-- command line:
--   WRK_METHOD  GET or POST (default GET)
--   WRK_BODY    a form body (sent as application/x-www-form-urlencoded)
--   WRK_AUTH    an Authorization header
-- At the end it prints one line that run.sh reads:
--   wrk-result requests=N duration_us=N p50_us=N p90_us=N p99_us=N max_us=N status_errors=N errors=N connect=N read=N write=N timeout=N
-- (status_errors: answers with status 400 or more; errors: the sum of the
-- socket errors after it, timeout being wrk's 2 s per request)

wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY") or ""
if body ~= "" then
	wrk.body = body
	wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("WRK_AUTH") or ""
if auth ~= "" then
	wrk.headers["Authorization"] = auth
end

function done(summary, latency, requests)
	local e = summary.errors
	io.write(string.format(
		"wrk-result requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d status_errors=%d errors=%d connect=%d read=%d write=%d timeout=%d\n",
		summary.requests, summary.duration,
		latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
		e.status, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write, e.timeout))
end
