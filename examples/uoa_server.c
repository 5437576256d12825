/*
 * UDP server that prints the real client of every datagram it receives
 * behind a FullNAT load balancer, using the uoa module
 * (getsockopt(IPPROTO_IP, UOA_SO_GET_LOOKUP), see module/uoa/uoa.h).
 *
 * Build: cc -O2 -Wall -I../module -o uoa_server uoa_server.c
 * Run:   ./uoa_server [port]        (default 8080, IPv4 and IPv6)
 *
 * The lookup key is the datagram as this socket saw it: the peer from
 * recvmsg() and the local address it was sent to (IPV6_PKTINFO, which a
 * dual-stack socket also reports for IPv4 datagrams, as ::ffff:a.b.c.d).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "uoa/uoa.h"

static const char *addr_text(int af, const void *addr, char *buf, size_t len)
{
	if (!inet_ntop(af, addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 8080;
	struct sockaddr_in6 local = { .sin6_family = AF_INET6 };
	int fd, zero = 0, one = 1;

	if (port <= 0 || port > 65535) {
		fprintf(stderr, "usage: %s [port 1-65535]\n", argv[0]);
		return 2;
	}
	fd = socket(AF_INET6, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	/* One socket for both families; IPv4 peers appear as ::ffff:a.b.c.d. */
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
	local.sin6_addr = in6addr_any;
	local.sin6_port = htons((uint16_t)port);
	if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
		perror("bind");
		return 1;
	}
	printf("listening on UDP port %d\n", port);
	fflush(stdout);

	for (;;) {
		char data[2048], cbuf[256], peer_s[INET6_ADDRSTRLEN],
		     real_s[INET6_ADDRSTRLEN];
		struct sockaddr_in6 peer;
		struct iovec iov = { data, sizeof(data) };
		struct msghdr msg = {
			.msg_name = &peer, .msg_namelen = sizeof(peer),
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
		};
		struct uoa_param_map map;
		socklen_t len = sizeof(map);
		struct cmsghdr *c;
		ssize_t n;
		int found_dst = 0;

		n = recvmsg(fd, &msg, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recvmsg");
			return 1;
		}
		memset(&map, 0, sizeof(map));
		map.af = AF_INET6;
		map.saddr.in6 = peer.sin6_addr;
		map.sport = peer.sin6_port;
		map.dport = local.sin6_port;
		for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level == IPPROTO_IPV6 &&
			    c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;

				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				map.daddr.in6 = pi.ipi6_addr;
				found_dst = 1;
			}
		}
		addr_text(AF_INET6, &peer.sin6_addr, peer_s, sizeof(peer_s));
		if (!found_dst) {
			printf("%zd bytes from [%s]:%u (no destination address)\n",
			       n, peer_s, ntohs(peer.sin6_port));
		} else if (getsockopt(fd, IPPROTO_IP, UOA_SO_GET_LOOKUP, &map,
				      &len) == 0) {
			printf("%zd bytes from [%s]:%u real client [%s]:%u\n",
			       n, peer_s, ntohs(peer.sin6_port),
			       addr_text(map.real_af, &map.real_saddr, real_s,
					 sizeof(real_s)),
			       ntohs(map.real_sport));
		} else {
			printf("%zd bytes from [%s]:%u (no real client: %s)\n",
			       n, peer_s, ntohs(peer.sin6_port),
			       errno == ENOPROTOOPT ? "uoa module not loaded" :
			       strerror(errno));
		}
		fflush(stdout);
	}
}
