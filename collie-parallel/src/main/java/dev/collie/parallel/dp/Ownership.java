package dev.collie.parallel.dp;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Parameter;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Who keeps each trainable parameter's reduced gradient and updates it, for one data-parallel rank: every rank
 * (plain data parallel, ZeRO-1: {@link #replicated}), or one owner rank per parameter, with the parameters too large
 * to balance split into one row block per rank (ZeRO-2/3: {@link #sharded}). The plan is a function of the
 * parameters' order and shapes, the same on every rank without communicating; the {@link GradientReducer} lays its
 * buckets out by it.
 */
final class Ownership {
    final String label;
    final int rank;
    final int n;
    /** Every trainable parameter once, in registration order. */
    private final List<Parameter> order = new ArrayList<>();
    private final Map<Parameter, String> nameOf = new IdentityHashMap<>();
    /** The first bucket grouping, in reverse registration order (owners are balanced within each group). */
    final List<List<Parameter>> groups;
    private final Map<Parameter, Integer> owner;
    /** Parameters split into row blocks, by whole parameter, in registration order. */
    private final Map<Parameter, RowBlocks> splits = new LinkedHashMap<>();
    /** What this rank's optimizer updates, by name: its whole parameters and its row blocks. */
    private final Map<String, Parameter> owned = new LinkedHashMap<>();

    private Ownership(String label, Map<String, Parameter> params, int rank, int n, long bucketBytes) {
        if (bucketBytes <= 0) {
            throw new IllegalArgumentException("bucketBytes must be positive, got " + bucketBytes);
        }
        this.label = label;
        this.rank = rank;
        this.n = n;
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        params.forEach((name, p) -> {
            if (p.requiresGrad() && seen.add(p)) {
                order.add(p);
                nameOf.put(p, name);
            }
        });
        List<Parameter> reversed = new ArrayList<>(order);
        Collections.reverse(reversed);
        this.groups = group(reversed, bucketBytes);
        this.owner = new IdentityHashMap<>();
    }

    /** Every rank keeps every reduced gradient (plain data parallel; ZeRO-1 shares out only the updates). */
    static Ownership replicated(String label, Map<String, Parameter> params, int rank, int n, long bucketBytes) {
        Ownership o = new Ownership(label, params, rank, n, bucketBytes);
        for (Parameter p : o.order) {
            o.owner.put(p, Owners.EVERY);
            o.owned.put(o.nameOf.get(p), p);
        }
        return o;
    }

    /**
     * One owner per trainable parameter among {@code params} (each distinct parameter under its first name),
     * balanced within each first bucket; parameters that {@code policy} splits get row blocks with arrays of their
     * own when {@code blocksOwnStorage} (ZeRO-3: the whole value is dropped), else views of the value's rows.
     *
     * @throws CollieException when some rank would own nothing
     */
    static Ownership sharded(String label, Map<String, Parameter> params, int rank, int n, long bucketBytes,
                             SplitPolicy policy, boolean blocksOwnStorage) {
        Ownership o = new Ownership(label, params, rank, n, bucketBytes);
        Map<Parameter, long[]> splitLoads = new IdentityHashMap<>();
        o.owner.putAll(o.plan(policy, splitLoads));
        for (long load : Owners.loads(o.owner, splitLoads, n)) {
            if (load == 0) {
                throw new CollieException(label + ": " + o.order.size() + " trainable parameters cannot be shared out"
                        + " over " + n + " ranks; every rank must own at least one (use fewer data-parallel ranks)");
            }
        }
        for (Parameter p : o.order) {
            if (o.owner.get(p) == Owners.SPLIT) {
                RowBlocks rb = new RowBlocks(o.nameOf.get(p), p, n, rank, blocksOwnStorage);
                o.splits.put(p, rb);
                o.owned.put(o.nameOf.get(p), rb.block);
            } else if (o.owner.get(p) == rank) {
                o.owned.put(o.nameOf.get(p), p);
            }
        }
        return o;
    }

    /**
     * Owners by whole parameters; while they leave a rank off the mean by more than the policy's tolerance, the
     * largest parameter over the policy's size limit not split yet is split (see {@link SplitPolicy}). Fills
     * {@code splitLoads} with the split parameters' elements per rank.
     */
    private Map<Parameter, Integer> plan(SplitPolicy policy, Map<Parameter, long[]> splitLoads) {
        Map<Parameter, Integer> whole = Owners.balancedPerGroup(groups, n);
        if (!policy.enabled() || n < 2 || policy.balanced(Owners.loads(whole, splitLoads, n))) {
            return whole;
        }
        long total = 0;
        for (Parameter p : order) {
            total += p.numel();
        }
        double limit = policy.fraction() * total / n;
        List<Parameter> candidates = new ArrayList<>();
        for (Parameter p : order) {
            if (p.numel() > limit && RowBlocks.splittable(p, n)) {
                candidates.add(p);
            }
        }
        candidates.sort((a, b) -> Long.compare(b.numel(), a.numel()));     // stable: registration order on ties
        Map<Parameter, Integer> best = whole;
        for (Parameter p : candidates) {
            splitLoads.put(p, RowBlocks.blockElements(p.shape(), p.numel(), n));
            best = Owners.balancedPerGroup(groups, n, splitLoads);
            if (policy.balanced(Owners.loads(best, splitLoads, n))) {
                break;
            }
        }
        return best;
    }

    /** Consecutive runs of {@code params} of one type and about {@code bucketBytes} (a larger parameter alone). */
    static List<List<Parameter>> group(List<Parameter> params, long bucketBytes) {
        List<List<Parameter>> groups = new ArrayList<>();
        List<Parameter> current = null;
        long currentBytes = 0;
        for (Parameter p : params) {
            long bytes = p.numel() * p.dtype().width();
            if (current == null || current.get(0).dtype() != p.dtype()
                    || (!current.isEmpty() && currentBytes + bytes > bucketBytes)) {
                current = new ArrayList<>();
                groups.add(current);
                currentBytes = 0;
            }
            current.add(p);
            currentBytes += bytes;
        }
        return groups;
    }

    /** Whether every rank keeps every reduced gradient. */
    boolean replicated() {
        return !order.isEmpty() && owner.get(order.get(0)) == Owners.EVERY;
    }

    /** Every trainable parameter once, in registration order. */
    List<Parameter> parameters() {
        return Collections.unmodifiableList(order);
    }

    /**
     * The owner rank of whole parameter {@code p}, {@link Owners#SPLIT} when every rank owns a row block of it, or
     * {@link Owners#EVERY} when every rank keeps it whole.
     */
    int owner(Parameter p) {
        Integer o = owner.get(p);
        if (o == null) {
            throw new IllegalArgumentException(label + ": " + p + " is not a trainable parameter of this model");
        }
        return o;
    }

    /** Whether this rank keeps {@code p}'s whole reduced gradient. */
    boolean owns(Parameter p) {
        int o = owner(p);
        return o == rank || o == Owners.EVERY;
    }

    /** The row blocks of {@code p}, or null when it is not split. */
    RowBlocks split(Parameter p) {
        return splits.get(p);
    }

    /** The split parameters' row blocks, in registration order. */
    Iterable<RowBlocks> splits() {
        return splits.values();
    }

    /** The parameters split into row blocks, by their (first) names, in registration order. */
    List<String> splitNames() {
        List<String> out = new ArrayList<>();
        for (RowBlocks rb : splits.values()) {
            out.add(rb.name);
        }
        return out;
    }

    String name(Parameter p) {
        return nameOf.getOrDefault(p, String.valueOf(p));
    }

    /** What this rank's optimizer updates, by name (a split parameter as this rank's row block). */
    Map<String, Parameter> ownedParameters() {
        return Collections.unmodifiableMap(owned);
    }
}
