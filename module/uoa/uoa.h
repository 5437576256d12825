/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * UOA (UDP Option Address): the interface for applications.
 *
 * A UDP server behind a FullNAT load balancer sees the balancer as the
 * source of every datagram. With the uoa module loaded, it asks for the
 * real client of a datagram it received:
 *
 *	struct uoa_param_map map;
 *	socklen_t len = sizeof(map);
 *
 *	memset(&map, 0, sizeof(map));
 *	map.af = AF_INET;			(family of the socket's view)
 *	map.saddr.in = peer.sin_addr;		(source, from recvfrom())
 *	map.daddr.in = local address the datagram was sent to
 *						(IP_PKTINFO / IPV6_RECVPKTINFO)
 *	map.sport = peer.sin_port;		(network byte order)
 *	map.dport = local port;			(network byte order)
 *	if (getsockopt(fd, IPPROTO_IP, UOA_SO_GET_LOOKUP, &map, &len) == 0)
 *		real client = map.real_af, map.real_saddr, map.real_sport
 *
 * Works on IPv4 and IPv6 sockets (always level IPPROTO_IP). An IPv4 peer
 * seen through a dual-stack IPv6 socket may be given either as AF_INET or
 * as AF_INET6 with ::ffff:a.b.c.d addresses. A socket gets answers only
 * for datagrams sent to its own port (and its own address unless it is
 * bound to the wildcard). Errors: ENOENT when the datagram carried no
 * (trusted, well-formed) UOA, no local socket received it, it was sent to
 * another socket's address or port, or the entry expired,
 * EINVAL when the buffer is shorter than struct uoa_param_map or af is
 * neither AF_INET nor AF_INET6, ENOPROTOOPT when the module is not loaded.
 *
 * The layout is DPVS's (packed, 58 bytes), so programs written for the
 * DPVS uoa module work unchanged. af and real_af hold AF_INET/AF_INET6 in
 * host byte order; ports are in network byte order.
 */
#ifndef UOA_UAPI_H
#define UOA_UAPI_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/in.h>
#include <linux/in6.h>
#else
#include <stdint.h>
#include <netinet/in.h>
#endif

#define UOA_SO_GET_LOOKUP	2048

union uoa_inet_addr {
	struct in_addr in;
	struct in6_addr in6;
};

/* Packed for kernel and applications alike (the same layout in C and C++). */
#pragma pack(push, 1)
struct uoa_param_map {
	/* input: the datagram as the socket saw it */
	uint16_t af;
	union uoa_inet_addr saddr;
	union uoa_inet_addr daddr;
	uint16_t sport;
	uint16_t dport;
	/* output: the real client */
	uint16_t real_af;
	union uoa_inet_addr real_saddr;
	uint16_t real_sport;
};
#pragma pack(pop)

#define UOA_PARAM_MAP_SIZE	58

#if defined(__cplusplus)
static_assert(sizeof(struct uoa_param_map) == UOA_PARAM_MAP_SIZE,
	      "struct uoa_param_map must be DPVS's 58 bytes");
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(struct uoa_param_map) == UOA_PARAM_MAP_SIZE,
	       "struct uoa_param_map must be DPVS's 58 bytes");
#endif

#endif /* UOA_UAPI_H */
