# Redis throughput against requests in flight on one connection, from redis_bench's CSV.
#   gnuplot -e "csv='benchmarks/results/redis_throughput.csv'; out='docs/redis_throughput.png'" benchmarks/plot_redis.gp
# (run.sh does this; the defaults below assume the repository root as working directory).
if (!exists("csv")) csv = 'benchmarks/results/redis_throughput.csv'
if (!exists("out")) out = 'docs/redis_throughput.png'

set terminal pngcairo size 1200,520 font 'DejaVu Sans,11'
set output out
set datafile separator ','
set key bottom right box opaque
set grid xtics ytics mytics
set logscale x 2
set logscale y 10
set xrange [0.7:370]
set xtics (1, 4, 16, 32, 64, 256)
set xlabel 'requests in flight on one connection (N)'
set ylabel 'operations per second'
set format y '%.0s%c'
set yrange [10000:*]

set multiplot layout 1,2 title 'corocache Cache<RedisBackend> vs raw hiredis (libevent) vs redis-benchmark -c 1 -P N; 16-byte values'
# Columns: 1 in_flight, 2-5 GET (corocache, hiredis, redis-benchmark, corocache no-poll), 6-9 SET
# (same order), 10 the thread wake-up time (us) measured just before that N (not drawn).
set title 'GET'
plot csv skip 1 using 1:2 with linespoints lw 2 pt 7 ps 1.3 lc rgb '#d62728' title 'corocache (default options)', \
     ''  skip 1 using 1:5 with linespoints lw 2 pt 6 ps 1.3 lc rgb '#ff7f0e' title 'corocache, no-poll (busy\_poll = 0)', \
     ''  skip 1 using 1:3 with linespoints lw 2 pt 5 ps 1.2 lc rgb '#1f77b4' title 'raw hiredis async', \
     ''  skip 1 using 1:4 with linespoints lw 2 pt 9 ps 1.3 lc rgb '#2ca02c' dt 2 title 'redis-benchmark'
set title 'SET (PX 7 days; redis-benchmark: plain SET)'
plot csv skip 1 using 1:6 with linespoints lw 2 pt 7 ps 1.3 lc rgb '#d62728' title 'corocache (default options)', \
     ''  skip 1 using 1:9 with linespoints lw 2 pt 6 ps 1.3 lc rgb '#ff7f0e' title 'corocache, no-poll (busy\_poll = 0)', \
     ''  skip 1 using 1:7 with linespoints lw 2 pt 5 ps 1.2 lc rgb '#1f77b4' title 'raw hiredis async', \
     ''  skip 1 using 1:8 with linespoints lw 2 pt 9 ps 1.3 lc rgb '#2ca02c' dt 2 title 'redis-benchmark'
unset multiplot
