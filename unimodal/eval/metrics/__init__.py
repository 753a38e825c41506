"""Pure measures on tensors and arrays (PSNR, SSIM, code statistics, audio and video metrics, FID): nothing here
knows a tokenizer, a run or the rest of the package."""
