#!/bin/sh
# Makes both-directions.pcap (run as root in this directory; needs tcpdump and python3):
# two network namespaces joined by a veth pair with fixed MAC addresses; tcpdump, with
# its defaults (promiscuous), captures on 02:00:5e:10:00:0a while that side pings the
# other and sends a DNS query, the other side tries SSH, and injects one frame to a
# third host's MAC address. The capture holds both directions, as tcpdump's do.
trap 'ip netns del opr-a 2>/dev/null; ip netns del opr-b 2>/dev/null' EXIT
set -e
ip netns add opr-a; ip netns add opr-b
ip link add opr-va netns opr-a type veth peer name opr-vb netns opr-b
ip -n opr-a link set opr-va address 02:00:5e:10:00:0a
ip -n opr-b link set opr-vb address 02:00:5e:10:00:0b
for n in a b; do ip netns exec opr-$n sysctl -qw net.ipv6.conf.all.disable_ipv6=1; ip -n opr-$n link set lo up; done
ip -n opr-a addr add 192.0.2.10/24 dev opr-va; ip -n opr-b addr add 192.0.2.20/24 dev opr-vb
ip -n opr-a link set opr-va up; ip -n opr-b link set opr-vb up
sleep 1
ip netns exec opr-a tcpdump -i opr-va -w both-directions.pcap -U & TD=$!
sleep 2
ip netns exec opr-a python3 -c '
import socket,struct,time
def csum(b):
  s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)
for seq in (1,2):
  h=struct.pack("!BBHHH",8,0,0,7,seq)+b"p"*16
  h=h[:2]+struct.pack("!H",csum(h))+h[4:]
  s.sendto(h,("192.0.2.20",0)); time.sleep(0.3)
'

ip netns exec opr-b python3 -c '
import socket
s=socket.socket(); s.settimeout(1)
try: s.connect(("192.0.2.10",22))
except Exception as e: print("ssh:",e)
'
ip netns exec opr-a python3 -c '
import socket
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(b"q"*20,("192.0.2.20",53))
'
ip netns exec opr-b python3 -c '
import socket
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind(("opr-vb",0))
dst=bytes.fromhex("02005e100099"); src=bytes.fromhex("02005e10000b")
# IPv4/UDP to another host 192.0.2.99:53
import struct
payload=b"x"*12
udp=struct.pack("!HHHH",4000,53,8+len(payload),0)+payload
ip=struct.pack("!BBHHHBBH4s4s",0x45,0,20+len(udp),1,0,64,17,0,bytes([192,0,2,20]),bytes([192,0,2,99]))
def csum(b):
  s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
ip=ip[:10]+struct.pack("!H",csum(ip))+ip[12:]
s.send(dst+src+b"\x08\x00"+ip+udp)
'
sleep 1.5
kill $TD; wait $TD || true
