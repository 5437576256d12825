/*
 * libFuzzer target for the shared TOA option parser (module/common/toa_opt.h),
 * the same code the kernel module runs on every received option area.
 *
 * Input: byte 0 picks the accepted kinds (254 always, plus 253/200 by bit),
 * the rest is the TCP option area. Beyond ASan/UBSan catching any read
 * outside the area, the harness checks the parser's promises against an
 * independent reading of the bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/toa_opt.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct toa_kind_set kinds;
	struct toa_opt opt;
	uint8_t *area;
	int len, ret, i;

	if (size < 1)
		return 0;
	toa_kind_set_clear(&kinds);
	toa_kind_set_add(&kinds, 254);
	if (data[0] & 1)
		toa_kind_set_add(&kinds, 253);
	if (data[0] & 2)
		toa_kind_set_add(&kinds, 200);

	/* An exactly sized heap copy, so ASan sees any over-read. */
	len = (int)(size - 1);
	area = (uint8_t *)malloc(len ? len : 1);
	memcpy(area, data + 1, len);

	ret = toa_opt_parse(area, len, &kinds, &opt);
	check(ret == TOA_OPT_NONE || ret == TOA_OPT_FOUND);
	check(opt.malformed >= 0 && opt.seen >= opt.malformed);
	/* The first option of an accepted kind decides; the walk ends there. */
	check(opt.seen <= 1);
	if (ret == TOA_OPT_FOUND) {
		int optlen = opt.family == 4 ? TOA_OPT_LEN_V4 : TOA_OPT_LEN_V6;
		int found = 0;

		check(opt.family == 4 || opt.family == 6);
		check(toa_kind_set_has(&kinds, opt.kind));
		check(opt.seen >= 1);
		/* The reported option must be present, whole, in the area. */
		for (i = 0; i + optlen <= len && i < TOA_OPT_SPACE_MAX; i++) {
			if (area[i] == opt.kind && area[i + 1] == optlen &&
			    !memcmp(area + i + 2, &opt.port_be, 2) &&
			    !memcmp(area + i + 4, opt.addr,
				    opt.family == 4 ? 4 : 16)) {
				found = 1;
				break;
			}
		}
		check(found);
		/* Parsing is a pure function of its input. */
		{
			struct toa_opt again;

			check(toa_opt_parse(area, len, &kinds, &again) == ret);
			check(again.family == opt.family &&
			      !memcmp(again.addr, opt.addr, sizeof(opt.addr)));
		}
	}
	free(area);
	return 0;
}
