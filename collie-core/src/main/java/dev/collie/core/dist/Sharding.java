package dev.collie.core.dist;

import java.util.List;

/**
 * How a parameter is split over tensor-parallel ranks: its style ({@link ParallelStyle#COLUMN} and
 * {@link ParallelStyle#VOCAB} split dimension 0, {@link ParallelStyle#ROW} dimension 1), the ranks holding the
 * blocks, and the sections of the split dimension that are split one by one (a fused projection's queries, keys and
 * values: each rank holds its block of every section, in order). The one record of the fact: the parameter carries
 * it ({@code Parameter.sharding()}).
 *
 * @param style how the tensor is split; {@link ParallelStyle#REPLICATE} for a whole one
 * @param group the ranks holding the other blocks; null for a whole tensor
 * @param sections the lengths of the split dimension's sections, summing to it; empty for one section
 */
public record Sharding(ParallelStyle style, Communicator group, List<Long> sections) {
    /** A whole tensor, the same on every rank. */
    public static final Sharding WHOLE = new Sharding(ParallelStyle.REPLICATE, null);

    /** A split of the whole dimension into contiguous blocks. */
    public Sharding(ParallelStyle style, Communicator group) {
        this(style, group, List.of());
    }

    public Sharding {
        sections = List.copyOf(sections);
        if (style == null) {
            throw new IllegalArgumentException("a sharding needs a style");
        }
        if (style != ParallelStyle.REPLICATE && group == null) {
            throw new IllegalArgumentException("a " + style + " split needs the group of ranks it is split over");
        }
        if (style == ParallelStyle.REPLICATE) {
            group = null;
        }
    }

    /** The dimension {@code style} splits: 0 for column and vocabulary, 1 for row, -1 for replicated. */
    public static int dimOf(ParallelStyle style) {
        return switch (style) {
            case COLUMN, VOCAB -> 0;
            case ROW -> 1;
            case REPLICATE -> -1;
        };
    }

    /** The dimension split over more than one rank, or -1 (whole, or a group of one). */
    public int dim() {
        return group != null && group.size() > 1 ? dimOf(style) : -1;
    }

    /** Whether the tensor is split over more than one rank. */
    public boolean isSplit() {
        return dim() >= 0;
    }
}
