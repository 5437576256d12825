/* SPDX-License-Identifier: GPL-2.0 */
/*
 * TOA (TCP Option Address) option parser.
 *
 * Shared by the kernel module, the unit tests and the fuzzer, so it is
 * plain C with no kernel-only types: it walks the raw TCP option bytes
 * (everything after the 20-byte fixed header) and reports the address in
 * the first option of an accepted kind.
 *
 * Only the first such option counts, well-formed or not. Balancers insert
 * their option straight after the fixed header (LVS and DPVS move the
 * segment's own options behind it), so an option further on is one the
 * client sent itself and the balancer forwarded. Taking a later one after
 * a broken first would let a client place its own behind a broken one;
 * refusing segments with two options would let a client hide behind the
 * balancer's address by adding a second. Both are worse than the first.
 *
 * Wire format (network byte order):
 *   kind (1) | length (1) = 8  | port (2) | IPv4 address (4)
 *   kind (1) | length (1) = 20 | port (2) | IPv6 address (16)
 */
#ifndef TOA_OPT_H
#define TOA_OPT_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#else
#include <stdint.h>
#include <string.h>
#endif

#define TOA_OPT_KIND_DEFAULT	254
#define TOA_OPT_LEN_V4		8
#define TOA_OPT_LEN_V6		20
/* Largest TCP option area: data offset 15 words minus the fixed header. */
#define TOA_OPT_SPACE_MAX	40

#define TCPOPT_EOL_TOA		0
#define TCPOPT_NOP_TOA		1

/* Result of toa_opt_parse(). */
enum toa_opt_status {
	TOA_OPT_NONE = 0,	/* no option of an accepted kind */
	TOA_OPT_FOUND = 1,	/* a well-formed address option */
};

/* Accepted kinds, one bit per kind value. */
struct toa_kind_set {
	uint8_t bits[32];
};

struct toa_opt {
	uint8_t family;		/* 4 or 6 */
	uint8_t kind;
	uint16_t port_be;	/* client port, network byte order */
	uint8_t addr[16];	/* IPv4 in the first 4 bytes, or IPv6 */
	/*
	 * 1 when the first option of an accepted kind is broken: a length
	 * other than 8 or 20, a length below 2, or running past the end of
	 * the option area. Filled whatever the status.
	 */
	int malformed;
	/* 1 when an option of an accepted kind was met (well-formed or not). */
	int seen;
};

static inline void toa_kind_set_clear(struct toa_kind_set *set)
{
	memset(set->bits, 0, sizeof(set->bits));
}

static inline void toa_kind_set_add(struct toa_kind_set *set, uint8_t kind)
{
	set->bits[kind >> 3] |= (uint8_t)(1u << (kind & 7));
}

static inline int toa_kind_set_has(const struct toa_kind_set *set,
				   uint8_t kind)
{
	return (set->bits[kind >> 3] >> (kind & 7)) & 1;
}

/*
 * Parse the TCP option area @opts of @len bytes. Returns TOA_OPT_FOUND and
 * fills @out when the first option of a kind in @kinds is well-formed,
 * else TOA_OPT_NONE. Never reads outside [opts, opts + len). The walk
 * ends at that first option, at end-of-list, or at a length byte below 2
 * or past the end (the rest cannot be framed).
 */
static inline int toa_opt_parse(const uint8_t *opts, int len,
				const struct toa_kind_set *kinds,
				struct toa_opt *out)
{
	int i = 0;

	out->malformed = 0;
	out->seen = 0;
	if (!opts || len <= 0)
		return TOA_OPT_NONE;
	if (len > TOA_OPT_SPACE_MAX)
		len = TOA_OPT_SPACE_MAX;

	while (i < len) {
		uint8_t kind = opts[i];
		int optlen;
		int accepted;

		if (kind == TCPOPT_EOL_TOA)
			break;
		if (kind == TCPOPT_NOP_TOA) {
			i++;
			continue;
		}
		accepted = toa_kind_set_has(kinds, kind);
		if (accepted)
			out->seen++;
		if (i + 1 >= len) {
			/* Kind byte without its length byte. */
			if (accepted)
				out->malformed++;
			break;
		}
		optlen = opts[i + 1];
		if (optlen < 2 || i + optlen > len) {
			if (accepted)
				out->malformed++;
			break;
		}
		if (accepted) {
			const uint8_t *p = opts + i + 2;

			if (optlen == TOA_OPT_LEN_V4) {
				out->family = 4;
				memset(out->addr, 0, sizeof(out->addr));
				memcpy(out->addr, p + 2, 4);
			} else if (optlen == TOA_OPT_LEN_V6) {
				out->family = 6;
				memcpy(out->addr, p + 2, 16);
			} else {
				out->malformed++;
				return TOA_OPT_NONE;
			}
			out->kind = kind;
			memcpy(&out->port_be, p, 2);
			return TOA_OPT_FOUND;
		}
		i += optlen;
	}
	return TOA_OPT_NONE;
}

#endif /* TOA_OPT_H */
