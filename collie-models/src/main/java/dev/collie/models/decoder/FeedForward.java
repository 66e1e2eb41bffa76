package dev.collie.models.decoder;

import dev.collie.core.nn.GeluMlp;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.SwiGluMlp;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.List;
import java.util.function.BiConsumer;

/**
 * A family's feed-forward network and the names of its projections: LLaMA's gated {@link SwiGluMlp} or GPT-J's
 * (CodeGen's) {@link GeluMlp}. The projections that read the block's input are split by their outputs under tensor
 * parallelism, the one back to the hidden size by its inputs.
 */
public sealed interface FeedForward {
    /** A new layer from {@code hidden} to {@code inner} and back, with biases as {@code bias} says. */
    Module create(long hidden, long inner, boolean bias, DataType dtype, double initStd);

    /** Each projection's name and weight shape {@code [out, in]}, in order. */
    void forEachProjection(long hidden, long inner, BiConsumer<String, long[]> visit);

    /** The projections that read the block's input. */
    List<String> inputProjections();

    /** The projection back to the hidden size. */
    String outputProjection();

    /** LLaMA's {@code down(silu(gate(x)) * up(x))}, gate and up perhaps one linear ({@link SwiGluMlp.Names#fused}). */
    record SwiGlu(SwiGluMlp.Names names) implements FeedForward {
        @Override
        public Module create(long hidden, long inner, boolean bias, DataType dtype, double initStd) {
            return new SwiGluMlp(names, hidden, inner, bias, dtype, initStd);
        }

        @Override
        public void forEachProjection(long hidden, long inner, BiConsumer<String, long[]> visit) {
            if (names.isFused()) {
                visit.accept(names.gate(), new long[] {2 * inner, hidden});
            } else {
                visit.accept(names.gate(), new long[] {inner, hidden});
                visit.accept(names.up(), new long[] {inner, hidden});
            }
            visit.accept(names.down(), new long[] {hidden, inner});
        }

        @Override
        public List<String> inputProjections() {
            return names.isFused() ? List.of(names.gate()) : List.of(names.gate(), names.up());
        }

        @Override
        public String outputProjection() {
            return names.down();
        }
    }

    /** GPT-J's and CodeGen's {@code out(gelu_new(in(x)))}. */
    record Gelu(GeluMlp.Names names) implements FeedForward {
        @Override
        public Module create(long hidden, long inner, boolean bias, DataType dtype, double initStd) {
            return new GeluMlp(names, hidden, inner, bias, dtype, initStd);
        }

        @Override
        public void forEachProjection(long hidden, long inner, BiConsumer<String, long[]> visit) {
            visit.accept(names.in(), new long[] {inner, hidden});
            visit.accept(names.out(), new long[] {hidden, inner});
        }

        @Override
        public List<String> inputProjections() {
            return List.of(names.in());
        }

        @Override
        public String outputProjection() {
            return names.out();
        }
    }
}
