package dev.collie.core.train;

import dev.collie.core.CollieException;
import dev.collie.core.nn.GradientHook;
import dev.collie.core.nn.Parameter;
import dev.collie.core.optim.FusedBackwardOptimizer;
import dev.collie.core.optim.Optimizer;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Each trainable parameter's way from backward to the optimizer, composed once from a {@link Distributed}, and
 * the only place that sets gradient hooks. A complete gradient goes
 * <ol>
 * <li>through a hold while other pipeline stages still add their part (a weight several stages share), released by
 *     {@link #finishBackward()} once the stages summed it — only for a fused-backward optimizer, which would
 *     otherwise update from a part;</li>
 * <li>into the data-parallel {@link Distributed.Reduction reduction}, if any: launched into a bucket (step-style
 *     optimizers; {@link #finishBackward()} waits for it), or averaged at once (fused ones);</li>
 * <li>to its consumer: kept on the parameter for {@code optimizer.step()}, or the fused optimizer's update (a rank
 *     that does not update it under ZeRO drops it).</li>
 * </ol>
 * Which combinations of optimizer, layout and config can train is decided here too ({@link #compose}).
 */
public final class GradientRoute {
    private final Distributed dist;
    private final boolean fused;
    /** Whether gradients go through the replicas' reduction (more than one replica). */
    private final boolean reducing;
    /** Parameters whose hook waits for the stages' sum, and the route they take afterwards. */
    private final Map<Parameter, GradientHook> held = new IdentityHashMap<>();
    private final List<Parameter> heldOrder = new ArrayList<>();

    private GradientRoute(Distributed dist, boolean fused, boolean reducing) {
        this.dist = dist;
        this.fused = fused;
        this.reducing = reducing;
    }

    /**
     * Composes the route of every parameter {@code dist} reduces (or, without a reduction, every parameter of
     * {@code optimizer}) after checking that {@code optimizer} can train with {@code dist} and {@code config}.
     *
     * @throws CollieException naming the combination and what to change, when it cannot train
     */
    public static GradientRoute compose(Distributed dist, Optimizer optimizer, CollieConfig config) {
        if (optimizer instanceof FusedBackwardOptimizer) {
            String name = optimizer.getClass().getSimpleName();
            if (config.gradientAccumulationSteps() != 1) {
                throw new CollieException("config: gradient_accumulation_steps = " + config.gradientAccumulationSteps()
                        + " cannot be used with " + name + ": it updates each parameter inside backward, so there is"
                        + " no gradient left to accumulate across micro-batches (use 1 and a larger micro-batch)");
            }
            if (config.clipGradNorm() > 0) {
                throw new CollieException("config: clip_grad_norm = " + config.clipGradNorm() + " cannot be applied by"
                        + " the Trainer to " + name + ", which never holds all gradients at once; give the clipping"
                        + " threshold to the optimizer instead");
            }
        }
        return compose(dist, optimizer);
    }

    /** As {@link #compose(Distributed, Optimizer, CollieConfig)} without a Trainer's config (a hand-driven step). */
    public static GradientRoute compose(Distributed dist, Optimizer optimizer) {
        FusedBackwardOptimizer f = optimizer instanceof FusedBackwardOptimizer o ? o : null;
        if (f != null) {
            refuseFused(dist, f);
        }
        Distributed.Reduction reduction = dist.replicas() > 1 ? dist.reduction() : null;
        GradientRoute route = new GradientRoute(dist, f != null, reduction != null);
        Set<Parameter> updated = identitySet(optimizer.parameters().values());
        Set<Parameter> shared = identitySet(dist.sharedAcrossStages());
        Collection<Parameter> routed = dist.routedParameters() != null ? dist.routedParameters()
                : optimizer.parameters().values();
        for (Parameter p : new LinkedHashSet<>(routed)) {
            GradientHook hook;
            if (f == null) {
                hook = reduction == null ? GradientHook.KEEP : reduction::launch;
            } else {
                boolean mine = updated.contains(p);
                hook = (q, g) -> {
                    if (reduction != null) {
                        reduction.reduceNow(q, g);
                    }
                    if (mine) {
                        f.onGradientReady(q, g);
                    } else {
                        q.releaseGrad();    // another replica updates it (ZeRO): this one keeps no gradient
                    }
                    return false;
                };
                if (shared.contains(p)) {
                    route.held.put(p, hook);
                    route.heldOrder.add(p);
                    hook = GradientHook.KEEP;
                }
            }
            p.setHook(hook);
        }
        dist.attach(optimizer);
        return route;
    }

    /** Legal combinations of a fused-backward optimizer with data parallelism, decided here once. */
    private static void refuseFused(Distributed dist, FusedBackwardOptimizer f) {
        String name = f.getClass().getSimpleName();
        if (dist.replicas() < 2) {
            return;
        }
        if (dist.splitsParameters()) {
            throw new CollieException(name + " updates each parameter whole inside backward, but this ZeRO sync split"
                    + " the largest parameters into row blocks across the replicas; build it without splitting"
                    + " (Parallelism.Builder.splitLargeParameters(false))");
        }
        if (dist.shardsOptimizerState() && !dist.shardsGradients()) {
            throw new CollieException(name + " under ZeRO-1: it keeps no optimizer state worth sharding and updates"
                    + " each parameter inside backward; use ZeRO stage 0, or 2/3 to shard its parameters' gradients"
                    + " and values");
        }
        if (dist.shardsOptimizerState() && f.passes() > 1) {
            throw new CollieException(name + " with gradient-norm clipping needs the whole gradient norm inside"
                    + " backward, which a ZeRO rank does not hold; drop its clipping or use ZeRO stage 0");
        }
    }

    /**
     * Whether forward and backward must run on one thread per rank: collectives inside them, or a fused optimizer
     * whose gradients every replica must reduce in the same order.
     */
    public static boolean singleStream(Distributed dist, Optimizer optimizer) {
        return dist.requiresSingleStream() || (dist.replicas() > 1 && optimizer instanceof FusedBackwardOptimizer);
    }

    /**
     * Completes the gradients of a backward pass: step-style optimizers wait for the data-parallel reduction, then
     * the pipeline stages sum the weights they share; a fused optimizer's held weights are summed over their stages
     * and then take the rest of their route (reduction, update).
     */
    public void finishBackward() {
        if (reducing && !fused) {
            dist.finishReduction();
        }
        dist.sumSharedGradients();
        for (Parameter p : heldOrder) {
            p.handOver(held.get(p));
        }
    }

    /** Puts the plain route (keep every gradient) back on {@code params}: a reduction detaching from a model. */
    public static void detach(Collection<Parameter> params) {
        for (Parameter p : params) {
            p.setHook(GradientHook.KEEP);
        }
    }

    private static Set<Parameter> identitySet(Collection<Parameter> ps) {
        Set<Parameter> s = Collections.newSetFromMap(new IdentityHashMap<>());
        s.addAll(ps);
        return s;
    }
}
