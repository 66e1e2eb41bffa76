package dev.collie.core.train;

/**
 * Measurements of one optimizer step: loss (mean over its micro-batches), learning rate, gradient
 * norm before clipping (NaN when not computed), tokens processed by all data-parallel replicas, wall
 * seconds, tokens/s (all replicas), TGS (CoLLiE's tokens per device per second: this data-parallel replica's tokens
 * ÷ (tp · pp ranks · seconds)) and this process's resident memory. {@code skipped}: the loss or the gradient norm was not finite, so the optimizer did
 * not update (the data was consumed and the step counts).
 */
public record StepStats(long step, long totalSteps, int epoch, double loss, double lr, double gradNorm, long tokens,
                        double seconds, double tokensPerSecond, double tgs, long residentBytes, long peakResidentBytes,
                        boolean skipped) {
}
