package dev.collie.parallel.comm;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

/** The argument checks that the communicators of this package share, with their messages. */
final class GroupArgs {
    private GroupArgs() { }

    /** Fails unless {@code r} is a rank of a group of {@code size}; {@code what} says which ("root", "source"). */
    static void checkRank(String op, String what, int r, int size) {
        if (r < 0 || r >= size) {
            throw new IllegalArgumentException(op + ": " + what + " rank " + r + " is outside [0, " + size + ")");
        }
    }

    /** Checks reduce-scatter's arrays: one data type, the input {@code n} (group size) times as long as the output. */
    static void checkReduceScatter(String op, INDArray in, INDArray outShard, int n) {
        requireSameType(op, in, outShard);
        requireGroupMultiple(op, "input", in, "output", outShard, n);
    }

    /** Checks all-gather's arrays: one data type, the output {@code n} (group size) times as long as the shard. */
    static void checkAllGather(String op, INDArray shard, INDArray out, int n) {
        requireSameType(op, shard, out);
        requireGroupMultiple(op, "output", out, "shard", shard, n);
    }

    private static void requireSameType(String op, INDArray a, INDArray b) {
        if (a.dataType() != b.dataType()) {
            throw new IllegalArgumentException(op + ": data types differ (" + a.dataType() + " vs " + b.dataType() + ")");
        }
    }

    private static void requireGroupMultiple(String op, String wholeName, INDArray whole, String partName, INDArray part,
                                             int n) {
        if (whole.length() != (long) n * part.length()) {
            throw new IllegalArgumentException(op + ": " + wholeName + " length " + whole.length() + " must be " + n
                    + " (group size) × " + partName + " length " + part.length());
        }
    }

    /** A sub-group: its members' world ranks, in the order listed, and this rank's index among them. */
    record SubGroup(int[] world, int mine) { }

    /**
     * Checks the rank list of a {@code subGroup} call by group rank {@code rank} of a group whose ranks have world
     * ranks {@code members} (not empty, every rank in the group, none twice); null when {@code rank} is not listed.
     */
    static SubGroup subGroup(int[] ranks, int[] members, int rank) {
        if (ranks == null || ranks.length == 0) {
            throw new IllegalArgumentException("subGroup: the rank list is empty");
        }
        Set<Integer> seen = new HashSet<>();
        int[] world = new int[ranks.length];
        int mine = -1;
        for (int i = 0; i < ranks.length; i++) {
            checkRank("subGroup", "member", ranks[i], members.length);
            if (!seen.add(ranks[i])) {
                throw new IllegalArgumentException("subGroup: rank " + ranks[i] + " is listed twice in "
                        + Arrays.toString(ranks));
            }
            world[i] = members[ranks[i]];
            if (ranks[i] == rank) {
                mine = i;
            }
        }
        return mine < 0 ? null : new SubGroup(world, mine);
    }
}
