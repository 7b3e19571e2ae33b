"""5,000 idle TCP connections (4,000 on the admission port, 1,000 on the
health port) against a running webhook, then 20 rounds of an HTTPS admission
request and GET /healthz on fresh connections. Prints what was answered and
how many flood connections the server closed (evicted). See docs/security.md.

usage: idle_flood.py ADMISSION_PORT HEALTH_PORT CA_FILE
"""
import socket, ssl, sys, time, json, http.client, resource
resource.setrlimit(resource.RLIMIT_NOFILE,(20000,20000))
port,hport,ca=int(sys.argv[1]),int(sys.argv[2]),sys.argv[3]
pod={"apiVersion":"v1","kind":"Pod","metadata":{"name":"flood","namespace":"team-a","annotations":{"secrets-injector.io/secret-db":"prod/db"}},"spec":{"containers":[{"name":"app","image":"app:1"}]}}
body=json.dumps({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"flood","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"team-a","operation":"CREATE","userInfo":{"username":"x"},"object":pod}}).encode()
socks=[];fail=0
for i in range(5000):
    p = port if i%5 else hport
    try:
        s=socket.create_connection(('127.0.0.1',p),timeout=2); socks.append(s)
    except Exception as e: fail+=1
print("opened",len(socks),"failed",fail)
ctx=ssl.create_default_context(cafile=ca); ctx.check_hostname=False
ok=0
for i in range(20):
    t=time.monotonic()
    try:
        c=http.client.HTTPSConnection('127.0.0.1',port,context=ctx,timeout=10)
        c.request('POST','/mutate',body,{'Content-Type':'application/json'}); r=c.getresponse(); d=r.read()
        h=http.client.HTTPConnection('127.0.0.1',hport,timeout=10); h.request('GET','/healthz'); hr=h.getresponse(); hr.read()
        if r.status==200 and hr.status==200: ok+=1
        print("admission",r.status,"healthz",hr.status,"%.1f ms"%((time.monotonic()-t)*1e3))
    except Exception as e: print("error",e)
# how many of the flood the server closed
closed=0
for s in socks:
    s.setblocking(False)
    try:
        if s.recv(1)==b'': closed+=1
    except BlockingIOError: pass
    except Exception: closed+=1
print(json.dumps({"opened":len(socks),"ok_rounds":ok,"closed_by_server":closed}))
