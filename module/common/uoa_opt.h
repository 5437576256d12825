/* SPDX-License-Identifier: GPL-2.0 */
/*
 * UOA (UDP Option Address) parsers.
 *
 * Shared by the kernel module, the unit tests and the fuzzer: plain C, no
 * allocation, no kernel-only types. Every function reads only inside the
 * [buf, buf + len) it is given, whatever the bytes say.
 *
 * Wire formats (network byte order):
 *  - IPv4 option:   type 0x1f | len 8  | port (2) | IPv4 (4)
 *                   type 0x1f | len 20 | port (2) | IPv6 (16)   (NAT64)
 *  - IPv6 destination option (inside a destination-options header, any
 *    Pad1/PadN layout):
 *                   type 0x1f | data len 18 | port (2) | IPv6 (16)
 *                   type 0x1f | data len 6  | port (2) | IPv4 (4) (NAT46)
 *  - Private protocol 248 ("option protocol", DPVS opp mode), right after
 *    the IPv4 header or the fixed IPv6 header:
 *                   version(4 bits) rsvd(4) | next protocol (1) |
 *                   length (2, header + options) | IPv4-style options
 *    where the options hold the IPv4 option above (len 8 or 20).
 */
#ifndef UOA_OPT_H
#define UOA_OPT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#else
#include <stdint.h>
#include <string.h>
#endif

#define UOA_OPT_TYPE		0x1f
#define UOA_IPOPT_LEN_V4	8	/* whole IPv4 option, IPv4 client */
#define UOA_IPOPT_LEN_V6	20	/* whole IPv4 option, IPv6 client */
#define UOA_DSTOPT_DLEN_V6	18	/* IPv6 option data, IPv6 client */
#define UOA_DSTOPT_DLEN_V4	6	/* IPv6 option data, IPv4 client */

#define UOA_OPP_PROTO		248
#define UOA_OPP_HDR_LEN		4
/* The fixed part plus as much option space as an IPv4 header has. */
#define UOA_OPP_HDR_MAX		(UOA_OPP_HDR_LEN + 40)
#define UOA_OPP_VERSION_V4	1
#define UOA_OPP_VERSION_V6	2

#define UOA_IPPROTO_UDP		17
#define UOA_NEXTHDR_HOP		0
#define UOA_NEXTHDR_ROUTING	43
#define UOA_NEXTHDR_DEST	60
/* Extension headers walked before giving up (a chain longer is abuse). */
#define UOA_EXTHDR_MAX		8
/*
 * What the kernel's ip6_parse_tlv() refuses, so that an option is never
 * taken from a header the kernel then drops: more than 7 bytes of
 * padding in a row, PadN with non-zero data, more options than
 * net.ipv6.conf.*.max_dst_opts_number (default 8), an unknown option
 * whose type says "discard".
 */
#define UOA_TLV_PADN		1
#define UOA_TLV_PAD_MAX		7
#define UOA_TLV_COUNT_MAX	8

enum uoa_parse_status {
	UOA_PARSE_NONE = 0,	/* well-formed, no UOA option */
	UOA_PARSE_FOUND = 1,	/* a well-formed UOA option, in @out */
	UOA_PARSE_BAD = 2,	/* malformed: framing broken or bad length */
};

/* The real client carried by an option. */
struct uoa_real {
	uint8_t family;		/* 4 or 6 */
	uint16_t port_be;	/* network byte order */
	uint8_t addr[16];	/* IPv4 in the first 4 bytes, rest zero */
};

static inline void uoa_real_set(struct uoa_real *out, int family,
				const uint8_t *port_addr)
{
	memset(out, 0, sizeof(*out));
	out->family = (uint8_t)family;
	memcpy(&out->port_be, port_addr, 2);
	memcpy(out->addr, port_addr + 2, family == 4 ? 4 : 16);
}

/*
 * IPv4-style option list (the IPv4 header options, or the option area of
 * a private-protocol header) of @len bytes. EOL ends the list, NOP is one
 * byte, everything else is type/length/data. The first UOA option decides:
 * length 8 or 20 is FOUND, any other length is BAD. The whole list is
 * framed: a length below 2 or past the end anywhere is BAD (the kernel
 * drops such a packet, so an option before it must not count).
 */
static inline int uoa_parse_ipv4_options(const uint8_t *opt, unsigned int len,
					 struct uoa_real *out)
{
	int result = UOA_PARSE_NONE;
	unsigned int i = 0;

	while (i < len) {
		uint8_t type = opt[i];
		unsigned int olen;

		if (type == 0)		/* end of option list */
			break;
		if (type == 1) {	/* no-operation */
			i++;
			continue;
		}
		if (len - i < 2)
			return UOA_PARSE_BAD;
		olen = opt[i + 1];
		if (olen < 2 || olen > len - i)
			return UOA_PARSE_BAD;
		if (type == UOA_OPT_TYPE && result == UOA_PARSE_NONE) {
			if (olen == UOA_IPOPT_LEN_V4)
				uoa_real_set(out, 4, opt + i + 2);
			else if (olen == UOA_IPOPT_LEN_V6)
				uoa_real_set(out, 6, opt + i + 2);
			else
				return UOA_PARSE_BAD;
			result = UOA_PARSE_FOUND;
		}
		i += olen;
	}
	return result;
}

/*
 * The TLVs of one IPv6 destination-options (or hop-by-hop) header: @hdr
 * points at its first byte (next header), @len is its full length
 * ((hdr[1] + 1) * 8, checked by the caller). Pad1 is one byte, PadN and
 * every other option are type/data length/data. The first UOA option
 * decides; the whole header must pass the kernel's checks (see
 * UOA_TLV_PAD_MAX), else BAD.
 */
static inline int uoa_parse_ipv6_tlvs(const uint8_t *hdr, unsigned int len,
				      struct uoa_real *out)
{
	unsigned int i = 2, padlen = 0, count = 0, k;
	int result = UOA_PARSE_NONE;

	while (i < len) {
		uint8_t type = hdr[i];
		unsigned int dlen;

		if (type == 0) {	/* Pad1 */
			if (++padlen > UOA_TLV_PAD_MAX)
				return UOA_PARSE_BAD;
			i++;
			continue;
		}
		if (len - i < 2)
			return UOA_PARSE_BAD;
		dlen = hdr[i + 1];
		if (dlen > len - i - 2)
			return UOA_PARSE_BAD;
		if (type == UOA_TLV_PADN) {
			padlen += 2 + dlen;
			if (padlen > UOA_TLV_PAD_MAX)
				return UOA_PARSE_BAD;
			for (k = 0; k < dlen; k++)
				if (hdr[i + 2 + k])
					return UOA_PARSE_BAD;
		} else {
			padlen = 0;
			if (++count > UOA_TLV_COUNT_MAX)
				return UOA_PARSE_BAD;
			if (type == UOA_OPT_TYPE) {
				if (dlen != UOA_DSTOPT_DLEN_V6 &&
				    dlen != UOA_DSTOPT_DLEN_V4)
					return UOA_PARSE_BAD;
				if (result == UOA_PARSE_NONE)
					uoa_real_set(out, dlen ==
						     UOA_DSTOPT_DLEN_V6 ? 6 : 4,
						     hdr + i + 2);
				result = UOA_PARSE_FOUND;
			} else if (type >> 6) {
				/* Unknown to us; the kernel discards it. */
				return UOA_PARSE_BAD;
			}
		}
		i += 2 + dlen;
	}
	return result;
}

/*
 * Walk the IPv6 extension headers that may precede UDP: @buf holds the
 * bytes after the fixed IPv6 header (@len of them), @nexthdr is the fixed
 * header's next-header field. Hop-by-hop, routing and destination-options
 * headers are stepped over; the UOA option is looked for in destination
 * options only (RFC 8200: options for the final destination). On return
 * *l4_off is the offset in @buf of the first non-extension header and
 * *l4_proto its protocol (both untouched when the chain is BAD).
 */
static inline int uoa_parse_ipv6_exthdrs(const uint8_t *buf, unsigned int len,
					 uint8_t nexthdr, struct uoa_real *out,
					 unsigned int *l4_off,
					 uint8_t *l4_proto)
{
	unsigned int off = 0;
	int result = UOA_PARSE_NONE;
	int n;

	for (n = 0; n < UOA_EXTHDR_MAX; n++) {
		unsigned int hlen;

		if (nexthdr != UOA_NEXTHDR_HOP &&
		    nexthdr != UOA_NEXTHDR_ROUTING &&
		    nexthdr != UOA_NEXTHDR_DEST) {
			*l4_off = off;
			*l4_proto = nexthdr;
			return result;
		}
		if (len - off < 2)
			return UOA_PARSE_BAD;
		hlen = ((unsigned int)buf[off + 1] + 1) * 8;
		if (hlen > len - off)
			return UOA_PARSE_BAD;
		if (nexthdr == UOA_NEXTHDR_DEST && result == UOA_PARSE_NONE) {
			result = uoa_parse_ipv6_tlvs(buf + off, hlen, out);
			if (result == UOA_PARSE_BAD)
				return UOA_PARSE_BAD;
		}
		nexthdr = buf[off];
		off += hlen;
	}
	return UOA_PARSE_BAD;
}

/*
 * Private-protocol header at @buf, of which @buf_len bytes may be read,
 * @avail bytes up to the end of the packet (@buf_len <= @avail: a caller
 * copies only what a header can span, UOA_OPP_HDR_MAX). *hdr_len is set
 * to the header length when the header can be removed safely (version 1
 * or 2, length at least 4, inside the bytes read and the packet, leaving
 * room for a UDP header, next protocol UDP), else to 0 and the header
 * cannot be removed. The return value is the parse of the options inside:
 * a header that can be removed but carries no or a broken UOA option
 * still lets the datagram through.
 */
static inline int uoa_parse_opp(const uint8_t *buf, unsigned int buf_len,
				unsigned int avail, struct uoa_real *out,
				unsigned int *hdr_len)
{
	unsigned int version, hlen;

	*hdr_len = 0;
	if (buf_len > avail || buf_len < UOA_OPP_HDR_LEN)
		return UOA_PARSE_BAD;
	version = buf[0] >> 4;
	hlen = ((unsigned int)buf[2] << 8) | buf[3];
	if (version != UOA_OPP_VERSION_V4 && version != UOA_OPP_VERSION_V6)
		return UOA_PARSE_BAD;
	if (buf[1] != UOA_IPPROTO_UDP || hlen < UOA_OPP_HDR_LEN ||
	    hlen > buf_len || avail - hlen < 8)
		return UOA_PARSE_BAD;
	*hdr_len = hlen;
	return uoa_parse_ipv4_options(buf + UOA_OPP_HDR_LEN,
				      hlen - UOA_OPP_HDR_LEN, out);
}

#endif /* UOA_OPT_H */
