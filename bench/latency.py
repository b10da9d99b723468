# P5: how long a record from a slow source takes to come out. Writes one record at a time
# into luapipe's stdin (a pipe that stays open) and times each until its output line arrives.
import subprocess, sys, time, statistics
bin, manifest = sys.argv[1], sys.argv[2]
p = subprocess.Popen([bin, "run", manifest], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
lat = []
for i in range(20):
    line = ('{"id":%d,"name":"user","email":"u%d@example.com","city":"Berlin","age":30,"score":0.5,"count":1}\n' % (i, i)).encode()
    t = time.perf_counter()
    p.stdin.write(line)
    p.stdout.readline()
    lat.append((time.perf_counter() - t) * 1000)
    time.sleep(0.05)
p.stdin.close()
p.wait()
print("P5 slow source, 20 records 50 ms apart: median %.2f ms, max %.2f ms per record" % (statistics.median(lat), max(lat)))
