/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Trusted-sources filter: a list of IPv4/IPv6 CIDRs ("10.0.0.0/8,
 * 2001:db8::/32") parsed once and matched per packet.
 *
 * Shared by the TOA and UOA modules, the unit tests and the fuzzer: plain
 * C, no allocation, no kernel-only types. The address parsers are our own
 * because user space has inet_pton() and the kernel has in4_pton(), but
 * nothing is common to both.
 */
#ifndef TB_CIDR_H
#define TB_CIDR_H

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/string.h>
#else
#include <stdint.h>
#include <string.h>
#endif

#define TB_CIDR_MAX	64

struct tb_cidr {
	uint8_t family;		/* 4 or 6 */
	uint8_t prefix;		/* 0..32 or 0..128 */
	uint8_t addr[16];	/* network byte order, host bits cleared */
};

struct tb_cidr_list {
	int count;
	struct tb_cidr entries[TB_CIDR_MAX];
};

/* Why a parse failed; error_pos from tb_cidr_list_parse() says where. */
enum tb_cidr_error {
	TB_CIDR_OK = 0,
	TB_CIDR_BAD_ADDRESS = -1,
	TB_CIDR_BAD_PREFIX = -2,
	TB_CIDR_TOO_MANY = -3,
	TB_CIDR_EMPTY_ITEM = -4,
};

static inline const char *tb_cidr_strerror(int err)
{
	switch (err) {
	case TB_CIDR_OK:
		return "ok";
	case TB_CIDR_BAD_ADDRESS:
		return "not an IPv4 (a.b.c.d) or IPv6 (x:x::x) address";
	case TB_CIDR_BAD_PREFIX:
		return "prefix length must be 0-32 for IPv4, 0-128 for IPv6";
	case TB_CIDR_TOO_MANY:
		return "too many CIDRs (at most 64)";
	case TB_CIDR_EMPTY_ITEM:
		return "empty item between commas";
	}
	return "unknown error";
}

static inline int tb_cidr_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Dotted quad in s[0..n) into out[4]; 0 on success. */
static inline int tb_cidr_parse_v4(const char *s, int n, uint8_t *out)
{
	int part = 0, i = 0;

	while (part < 4) {
		int val = 0, digits = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9') {
			/* No leading zeros: "010" is octal to some parsers. */
			if (digits == 1 && val == 0)
				return -1;
			val = val * 10 + (s[i] - '0');
			if (val > 255)
				return -1;
			digits++;
			i++;
		}
		if (!digits)
			return -1;
		out[part++] = (uint8_t)val;
		if (part < 4) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
	}
	return i == n ? 0 : -1;
}

/* IPv6 text (RFC 4291 2.2, with "::" and a trailing dotted quad). */
static inline int tb_cidr_parse_v6(const char *s, int n, uint8_t *out)
{
	uint8_t words[16];
	int nbytes = 0, gap = -1, i = 0;

	if (n >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		i = 2;
	} else if (n >= 1 && s[0] == ':') {
		return -1;
	}
	while (i < n) {
		int val = 0, digits = 0, j = i;

		while (j < n && digits < 5 && tb_cidr_hexval(s[j]) >= 0) {
			val = val * 16 + tb_cidr_hexval(s[j]);
			digits++;
			j++;
		}
		if (j < n && s[j] == '.') {
			/* Embedded IPv4 must be the last 32 bits. */
			if (nbytes > 12 || tb_cidr_parse_v4(s + i, n - i,
							    words + nbytes))
				return -1;
			nbytes += 4;
			i = n;
			break;
		}
		if (!digits || digits > 4 || nbytes > 14)
			return -1;
		words[nbytes++] = (uint8_t)(val >> 8);
		words[nbytes++] = (uint8_t)val;
		i = j;
		if (i == n)
			break;
		if (s[i] != ':')
			return -1;
		i++;
		if (i < n && s[i] == ':') {
			if (gap >= 0)
				return -1;
			gap = nbytes;
			i++;
		} else if (i == n) {
			return -1;	/* trailing single colon */
		}
	}
	if (gap < 0) {
		if (nbytes != 16)
			return -1;
		memcpy(out, words, 16);
		return 0;
	}
	if (nbytes > 14)
		return -1;	/* "::" must stand for at least one word */
	memset(out, 0, 16);
	memcpy(out, words, gap);
	memcpy(out + 16 - (nbytes - gap), words + gap, nbytes - gap);
	return 0;
}

static inline void tb_cidr_mask(uint8_t *addr, int bytes, int prefix)
{
	int b;

	for (b = 0; b < bytes; b++) {
		int keep = prefix - b * 8;

		if (keep >= 8)
			continue;
		if (keep <= 0)
			addr[b] = 0;
		else
			addr[b] &= (uint8_t)(0xff << (8 - keep));
	}
}

/* One "addr[/prefix]" item of n characters. */
static inline int tb_cidr_parse_one(const char *s, int n, struct tb_cidr *c)
{
	int slash = -1, i, alen, is_v6 = 0, prefix;

	for (i = 0; i < n; i++) {
		if (s[i] == '/' && slash < 0)
			slash = i;
		else if (s[i] == ':')
			is_v6 = 1;
	}
	alen = slash < 0 ? n : slash;
	if (is_v6) {
		if (tb_cidr_parse_v6(s, alen, c->addr))
			return TB_CIDR_BAD_ADDRESS;
		c->family = 6;
	} else {
		memset(c->addr, 0, sizeof(c->addr));
		if (tb_cidr_parse_v4(s, alen, c->addr))
			return TB_CIDR_BAD_ADDRESS;
		c->family = 4;
	}
	prefix = c->family == 4 ? 32 : 128;
	if (slash >= 0) {
		int val = 0, digits = 0;

		for (i = slash + 1; i < n; i++) {
			if (s[i] < '0' || s[i] > '9' || digits >= 3)
				return TB_CIDR_BAD_PREFIX;
			val = val * 10 + (s[i] - '0');
			digits++;
		}
		if (!digits || val > prefix)
			return TB_CIDR_BAD_PREFIX;
		prefix = val;
	}
	c->prefix = (uint8_t)prefix;
	tb_cidr_mask(c->addr, c->family == 4 ? 4 : 16, prefix);
	return TB_CIDR_OK;
}

static inline int tb_cidr_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/*
 * Parse a comma-separated list. An empty (or all-blank) string gives an
 * empty list, which callers treat as "trust everyone". On error returns a
 * negative tb_cidr_error and sets *error_pos to the offset of the bad item.
 */
static inline int tb_cidr_list_parse(const char *s, struct tb_cidr_list *list,
				     int *error_pos)
{
	int start = 0, end, len;

	list->count = 0;
	*error_pos = 0;
	if (!s)
		return TB_CIDR_OK;
	len = (int)strlen(s);
	/* An all-blank string means "no list". */
	for (end = 0; end < len && tb_cidr_is_space(s[end]); end++)
		;
	if (end == len)
		return TB_CIDR_OK;

	while (start <= len) {
		int a = start, b, err;

		for (end = start; end < len && s[end] != ','; end++)
			;
		b = end;
		while (a < b && tb_cidr_is_space(s[a]))
			a++;
		while (b > a && tb_cidr_is_space(s[b - 1]))
			b--;
		*error_pos = a;
		if (a == b)
			return TB_CIDR_EMPTY_ITEM;
		if (list->count >= TB_CIDR_MAX)
			return TB_CIDR_TOO_MANY;
		err = tb_cidr_parse_one(s + a, b - a,
					&list->entries[list->count]);
		if (err)
			return err;
		list->count++;
		start = end + 1;
	}
	*error_pos = 0;
	return TB_CIDR_OK;
}

static inline int tb_cidr_contains(const struct tb_cidr *c, int family,
				   const uint8_t *addr)
{
	int full = c->prefix / 8, rest = c->prefix % 8;

	if (c->family != family)
		return 0;
	if (full && memcmp(c->addr, addr, full))
		return 0;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if ((addr[full] & mask) != c->addr[full])
			return 0;
	}
	return 1;
}

static inline int tb_cidr_v4mapped(const uint8_t *addr)
{
	static const uint8_t prefix[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};

	return !memcmp(addr, prefix, sizeof(prefix));
}

/*
 * Does the list hold @addr (family 4: 4 bytes, family 6: 16 bytes)? An
 * empty list matches nothing; callers decide what "empty" means.
 *
 * An IPv6 source in ::ffff:0:0/96 matches nothing, neither IPv4 entries
 * nor IPv6 entries covering it: such a packet is IPv6 on the wire, and
 * since 5.12 (and 5.10.y) the kernel no longer drops IPv6 packets with a
 * v4-mapped source, so anyone reaching the host can send one. Trusting
 * it for an IPv4 entry would let "10.0.0.0/8" admit "::ffff:10.0.0.5".
 */
static inline int tb_cidr_list_match(const struct tb_cidr_list *list,
				     int family, const uint8_t *addr)
{
	int i;

	if (family == 6 && tb_cidr_v4mapped(addr))
		return 0;
	for (i = 0; i < list->count; i++) {
		if (tb_cidr_contains(&list->entries[i], family, addr))
			return 1;
	}
	return 0;
}

#endif /* TB_CIDR_H */
