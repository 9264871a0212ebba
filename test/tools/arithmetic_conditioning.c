/* Writes an arithmetic-coded JPEG (quality 90) with the given DAC conditioning, which cjpeg cannot set.
   Built and run by jpeg_goldens.py: cc arithmetic_conditioning.c -ljpeg (libjpeg62-turbo-dev). */
#include <stdio.h>
#include <stdlib.h>
#include <jpeglib.h>

int main(int argc, char **argv) {
  if (argc != 7) {
    fprintf(stderr, "usage: %s in.ppm out.jpg L U Kx progressive(0|1)\n", argv[0]);
    return 2;
  }
  FILE *in = fopen(argv[1], "rb");
  int w, h, maxval;
  if (!in || fscanf(in, "P6 %d %d %d", &w, &h, &maxval) != 3 || maxval != 255) return 1;
  fgetc(in);
  unsigned char *rgb = malloc((size_t)w * h * 3);
  if (fread(rgb, 3, (size_t)w * h, in) != (size_t)w * h) return 1;
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  FILE *out = fopen(argv[2], "wb");
  jpeg_stdio_dest(&c, out);
  c.image_width = w;
  c.image_height = h;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 90, TRUE);
  c.arith_code = TRUE;
  for (int t = 0; t < NUM_ARITH_TBLS; t++) {
    c.arith_dc_L[t] = atoi(argv[3]);
    c.arith_dc_U[t] = atoi(argv[4]);
    c.arith_ac_K[t] = atoi(argv[5]);
  }
  if (atoi(argv[6])) jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = rgb + (size_t)c.next_scanline * w * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  fclose(out);
  return 0;
}
