/*
 * libFuzzer target for the UOA parsers shared with the kernel module
 * (module/common/uoa_opt.h). The first input byte picks the parser and, for
 * the IPv6 walk, the first next-header value; the rest is the packet bytes.
 * For the private-protocol header the parser gets, as in the kernel, only
 * the bytes a header can span (UOA_OPP_HDR_MAX, copied to a buffer of
 * exactly that size so ASan sees a read beyond it) and the number of
 * bytes up to the end of the packet, which is larger for longer inputs
 * and, picked by the selector, sometimes claimed larger than the input
 * (the IP header's length field is the balancer's word).
 * Besides ASan/UBSan catching any read outside the input, every result is
 * checked against what the kernel module relies on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/uoa_opt.h"

static void check_real(int result, const struct uoa_real *real)
{
	if (result != UOA_PARSE_FOUND)
		return;
	if (real->family != 4 && real->family != 6)
		abort();
	/* An IPv4 client leaves the rest of the address zero. */
	if (real->family == 4) {
		static const uint8_t zero[12];

		if (memcmp(real->addr + 4, zero, sizeof(zero)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct uoa_real real;
	unsigned int len, l4_off = 0, hdr_len = 7;
	uint8_t l4_proto = 0, selector;
	const uint8_t *p;
	int r;

	if (size < 1)
		return 0;
	selector = data[0];
	p = data + 1;
	len = (unsigned int)(size - 1);
	memset(&real, 0xa5, sizeof(real));

	switch (selector % 4) {
	case 0:
		r = uoa_parse_ipv4_options(p, len, &real);
		break;
	case 1:
		/* A destination-options header as the kernel frames it. */
		if (len < 2 || len < ((unsigned int)p[1] + 1) * 8)
			return 0;
		r = uoa_parse_ipv6_tlvs(p, ((unsigned int)p[1] + 1) * 8, &real);
		break;
	case 2: {
		static const uint8_t first[4] = { 0, 43, 60, 17 };

		r = uoa_parse_ipv6_exthdrs(p, len, first[(selector >> 2) % 4],
					   &real, &l4_off, &l4_proto);
		if (r != UOA_PARSE_BAD && l4_off > len)
			abort();
		break;
	}
	default: {
		unsigned int copied = len < UOA_OPP_HDR_MAX ? len : UOA_OPP_HDR_MAX;
		unsigned int avail = len + ((selector >> 2) & 3) * 8;
		uint8_t *copy = (uint8_t *)malloc(copied ? copied : 1);

		memcpy(copy, p, copied);
		r = uoa_parse_opp(copy, copied, avail, &real, &hdr_len);
		free(copy);
		/* Removable: inside what was read, UDP fits behind it. */
		if (hdr_len && (hdr_len < UOA_OPP_HDR_LEN || hdr_len > copied ||
				hdr_len > avail || avail - hdr_len < 8))
			abort();
		if (!hdr_len && r != UOA_PARSE_BAD)
			abort();
		/* The header length field decides, not the bytes around it. */
		if (hdr_len && hdr_len != (((unsigned int)p[2] << 8) | p[3]))
			abort();
		break;
	}
	}
	if (r != UOA_PARSE_NONE && r != UOA_PARSE_FOUND && r != UOA_PARSE_BAD)
		abort();
	check_real(r, &real);
	return 0;
}
