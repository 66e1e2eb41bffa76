package dev.collie.core.tensor;

import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.ResetPolicy;
import org.nd4j.linalg.api.memory.enums.SpillPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.function.Supplier;

/**
 * Reused memory for the arrays of one micro-batch: everything a forward/backward allocates lives in a
 * workspace that is reset, not freed, between micro-batches, so steady-state steps touch no fresh pages
 * (a first-touch page fault costs ~12 µs per 4 KiB here; see docs/design-notes.md). Parameters,
 * gradients and optimizer state are allocated outside.
 */
public final class Workspaces {
    private static final WorkspaceConfiguration STEP = WorkspaceConfiguration.builder()
            .initialSize(0).policyAllocation(AllocationPolicy.STRICT).policyLearning(LearningPolicy.FIRST_LOOP)
            .policyReset(ResetPolicy.BLOCK_LEFT).policySpill(SpillPolicy.REALLOCATE).build();

    private static final String SCRATCH = "collie-scratch";

    private Workspaces() {
    }

    /** Opens (or re-enters) the per-thread workspace {@code id}; close it at the end of the micro-batch. */
    public static MemoryWorkspace open(String id) {
        return Nd4j.getWorkspaceManager().getAndActivateWorkspace(STEP, id);
    }

    /**
     * Runs {@code body} in a nested scratch workspace and moves only its result to the enclosing one:
     * for work whose temporaries die with it, such as one layer's backward (everything but the input
     * gradient it returns). Without an enclosing workspace it just runs {@code body}.
     */
    public static INDArray scratch(Supplier<INDArray> body) {
        MemoryWorkspace parent = Nd4j.getMemoryManager().getCurrentWorkspace();
        if (parent == null || SCRATCH.equals(parent.getId())) {
            return body.get();   // no enclosing workspace, or already in the scratch one: its result lives there
        }
        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(STEP, SCRATCH)) {
            INDArray out = body.get();
            if (out == null) {
                return null;
            }
            // copy into the enclosing workspace by borrowing its scope (INDArray.leverage() corrupts
            // the heap for DOUBLE arrays in ND4J 1.0.0-M2.1)
            try (MemoryWorkspace borrowed = parent.notifyScopeBorrowed()) {
                return out.dup('c');
            }
        }
    }

    /** Whether {@code ws} is the scratch workspace {@link #scratch} runs its body in. */
    public static boolean isScratch(MemoryWorkspace ws) {
        return ws != null && SCRATCH.equals(ws.getId());
    }

    /** Whether {@code x}'s memory belongs to a scratch workspace (it is gone once the scratch body returns). */
    public static boolean inScratch(INDArray x) {
        return x.isAttached() && isScratch(x.data().getParentWorkspace());
    }

    /** Bytes the current thread's scratch workspace holds (0 if none). */
    public static long scratchSize() {
        return size(SCRATCH);
    }

    /** Bytes the current thread's workspace {@code id} holds (0 if none). */
    public static long size(String id) {
        MemoryWorkspace ws = Nd4j.getWorkspaceManager().getWorkspaceForCurrentThread(STEP, id);
        return ws == null ? 0 : ws.getCurrentSize();
    }
}
