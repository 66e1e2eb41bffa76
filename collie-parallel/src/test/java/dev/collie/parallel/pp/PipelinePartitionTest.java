package dev.collie.parallel.pp;

import dev.collie.core.CollieException;
import dev.collie.core.nn.Checkpointed;
import dev.collie.core.nn.Layer;
import dev.collie.core.nn.LayerWrapper;
import dev.collie.core.nn.Module;
import dev.collie.core.nn.Parameter;
import dev.collie.core.nn.Tape;
import dev.collie.core.train.ActivationCheckpointing;
import dev.collie.models.decoder.DecoderConfig;
import dev.collie.models.decoder.DecoderForCausalLM;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The three partition methods on synthetic layers (exact bounds) and on the tiny LLaMA's 7 pipeline layers. */
@Timeout(value = 20, unit = TimeUnit.SECONDS)
class PipelinePartitionTest {
    /** A layer with parameters of the given sizes; its class name is what {@code type:} matches. */
    abstract static class Fake extends Module implements Layer {
        Fake(long... sizes) {
            for (int i = 0; i < sizes.length; i++) {
                registerParameter("p" + i, new Parameter(Nd4j.zeros(DataType.FLOAT, sizes[i])));
            }
        }

        Fake(Parameter shared) {
            registerParameter("shared", shared);
        }

        @Override public INDArray forward(Tape tape, INDArray x) { return x; }
        @Override public INDArray backward(Tape tape, INDArray dy) { return dy; }
    }

    static final class Embed extends Fake { Embed(long... s) { super(s); } }
    static final class Block extends Fake { Block(long... s) { super(s); } }
    static final class Norm extends Fake { Norm(long... s) { super(s); } }
    static final class Head extends Fake {
        Head(long... s) { super(s); }
        Head(Parameter tied) { super(tied); }
    }

    /** One parameter registered under two names. */
    static final class Twice extends Fake {
        Twice(Parameter p) {
            registerParameter("a", p);
            registerParameter("b", p);
        }
    }

    /** A wrapper that adds nothing: the wrapped layer's name and parameters must show through. */
    static final class Wrapped extends LayerWrapper {
        Wrapped(Layer inner) { super(inner); }
        @Override public INDArray forward(Tape tape, INDArray x) { return inner().forward(tape, x); }
        @Override public INDArray backward(Tape tape, INDArray dy) { return inner().backward(tape, dy); }
    }

    private static List<Layer> blocks(long... weights) {
        List<Layer> out = new ArrayList<>();
        for (long w : weights) {
            out.add(w == 0 ? new Block() : new Block(w));
        }
        return out;
    }

    // ---- parameters ------------------------------------------------------------------------------------

    @Test
    void parametersMinimiseTheHeaviestStageThenEvenOutTheRest() {
        // the heaviest stage is at least 10 whatever the cut; of the cuts reaching it, (2, 2, 1) is the most even
        assertArrayEquals(new int[] {0, 2, 4, 5}, PipelinePartition.bounds(blocks(1, 1, 1, 1, 10), 3, "parameters"));
        // a heavy middle: the cut that isolates it
        assertArrayEquals(new int[] {0, 2, 3, 5}, PipelinePartition.bounds(blocks(3, 3, 9, 3, 3), 3, "parameters"));
        assertArrayEquals(new int[] {0, 3, 4, 6}, PipelinePartition.bounds(blocks(1, 2, 3, 6, 4, 2), 3, "Parameters"));
        // equal weight sums: the more even layer counts, then the earlier cut
        assertArrayEquals(new int[] {0, 2, 5}, PipelinePartition.bounds(blocks(0, 0, 5, 0, 0), 2, "parameters"));
        assertArrayEquals(new int[] {0, 2, 4}, PipelinePartition.bounds(blocks(0, 0, 0, 0), 2, "parameters"));
        // one stage, and as many stages as layers
        assertArrayEquals(new int[] {0, 3}, PipelinePartition.bounds(blocks(5, 1, 7), 1, "parameters"));
        assertArrayEquals(new int[] {0, 1, 2, 3}, PipelinePartition.bounds(blocks(5, 1, 7), 3, "parameters"));
    }

    @Test
    void parametersCountEachDistinctParameterOnceBelowWrappers() {
        // the same parameter under two names of one layer counts once
        Parameter shared = new Parameter(Nd4j.zeros(DataType.FLOAT, 6));
        Twice twice = new Twice(shared);
        assertEquals(2, twice.namedParameters().size());
        assertEquals(6, PipelinePartition.parameterCount(twice));
        assertEquals(0, PipelinePartition.parameterCount(new Block()));
        Block big = new Block(8, 4);
        assertEquals(12, PipelinePartition.parameterCount(big));
        assertEquals(12, PipelinePartition.parameterCount(new Wrapped(big)));
        assertEquals(12, PipelinePartition.parameterCount(new Checkpointed(new Wrapped(big))));
        // a head tied to the embedding counts its (shared) table, as it computes with it
        Parameter table = new Parameter(Nd4j.zeros(DataType.FLOAT, 10));
        List<Layer> layers = List.of(new Head(table), new Block(4), new Block(4), new Head(table));
        assertArrayEquals(new int[] {0, 1, 3, 4}, PipelinePartition.bounds(layers, 3, "parameters"));
        // wrappers change nothing
        List<Layer> wrapped = List.of(new Wrapped(new Block(1)), new Checkpointed(new Block(1)), new Block(1),
                new Block(1), new Checkpointed(new Wrapped(new Block(10))));
        assertArrayEquals(new int[] {0, 2, 4, 5}, PipelinePartition.bounds(wrapped, 3, "parameters"));
    }

    // ---- uniform -----------------------------------------------------------------------------------------

    @Test
    void uniformGivesTheFirstStagesTheExtraLayers() {
        List<Layer> seven = blocks(1, 1, 1, 1, 1, 1, 1);
        assertArrayEquals(new int[] {0, 4, 7}, PipelinePartition.bounds(seven, 2, "uniform"));
        assertArrayEquals(new int[] {0, 3, 5, 7}, PipelinePartition.bounds(seven, 3, "uniform"));
        assertArrayEquals(new int[] {0, 2, 4, 6, 7}, PipelinePartition.bounds(seven, 4, "UNIFORM"));
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, PipelinePartition.bounds(seven, 7, "uniform"));
    }

    // ---- type:REGEX ----------------------------------------------------------------------------------------

    @Test
    void typeBalancesMatchingLayersAndKeepsTheOthersWithTheirNeighbours() {
        List<Layer> layers = List.of(new Embed(5), new Block(1), new Norm(1), new Block(1), new Block(1), new Head(5));
        // the norm between two blocks stays with the block before it
        assertArrayEquals(new int[] {0, 3, 4, 6}, PipelinePartition.bounds(layers, 3, "type:block"));
        assertArrayEquals(new int[] {0, 4, 6}, PipelinePartition.bounds(layers, 2, "type:Block"));
        assertArrayEquals(new int[] {0, 6}, PipelinePartition.bounds(layers, 1, "type:^BLOCK$"));
        // two types at once (any regex); matched below wrappers
        List<Layer> wrapped = List.of(new Embed(5), new Checkpointed(new Wrapped(new Block(1))), new Block(1),
                new Norm(1), new Head(5));
        assertArrayEquals(new int[] {0, 2, 5}, PipelinePartition.bounds(wrapped, 2, "type:block"));
        assertArrayEquals(new int[] {0, 1, 2, 5}, PipelinePartition.bounds(wrapped, 3, "type:embed|block"));
    }

    // ---- the tiny LLaMA: embedding, 4 blocks, norm, head ----------------------------------------------------

    private static DecoderForCausalLM tinyLlama(boolean tied) {
        DecoderConfig c = DecoderConfig.builder().vocabSize(64).hiddenSize(32).intermediateSize(64).numHiddenLayers(4)
                .numAttentionHeads(4).numKeyValueHeads(2).maxPositionEmbeddings(64).tieWordEmbeddings(tied).build();
        return new DecoderForCausalLM(c, DataType.FLOAT);
    }

    @Test
    void tinyLlamaBoundsByEveryMethod() {
        for (boolean tied : new boolean[] {false, true}) {
            DecoderForCausalLM model = tinyLlama(tied);
            List<Layer> layers = model.pipelineLayers();
            assertEquals(7, layers.size());
            // embedding 64·32 = 2048; block 3072 (attention) + 6144 (MLP) + 64 (norms) = 9280; norm 32; head 2048
            long[] counts = layers.stream().mapToLong(PipelinePartition::parameterCount).toArray();
            assertArrayEquals(new long[] {2048, 9280, 9280, 9280, 9280, 32, 2048}, counts);
            assertArrayEquals(new int[] {0, 3, 7}, PipelinePartition.bounds(layers, 2, "parameters"));
            assertArrayEquals(new int[] {0, 2, 4, 7}, PipelinePartition.bounds(layers, 3, "parameters"));
            assertArrayEquals(new int[] {0, 2, 3, 4, 7}, PipelinePartition.bounds(layers, 4, "parameters"));
            assertArrayEquals(new int[] {0, 4, 7}, PipelinePartition.bounds(layers, 2, "uniform"));
            assertArrayEquals(new int[] {0, 2, 4, 6, 7}, PipelinePartition.bounds(layers, 4, "uniform"));
            for (String type : new String[] {"type:DecoderLayer", "type:decoder", "TYPE:DecoderLayer$"}) {
                assertArrayEquals(new int[] {0, 3, 7}, PipelinePartition.bounds(layers, 2, type));
                assertArrayEquals(new int[] {0, 3, 4, 7}, PipelinePartition.bounds(layers, 3, type));
                assertArrayEquals(new int[] {0, 2, 3, 4, 7}, PipelinePartition.bounds(layers, 4, type));
            }
            // gradient checkpointing wraps the blocks: the same cuts
            ActivationCheckpointing.apply(model, true);
            List<Layer> ck = model.pipelineLayers();
            assertTrue(ck.get(1) instanceof Checkpointed);
            assertArrayEquals(new int[] {0, 2, 3, 4, 7}, PipelinePartition.bounds(ck, 4, "type:decoder"));
            assertArrayEquals(new int[] {0, 2, 3, 4, 7}, PipelinePartition.bounds(ck, 4, "parameters"));
        }
    }

    // ---- errors ----------------------------------------------------------------------------------------------

    private static void fails(List<Layer> layers, int stages, String method, String... words) {
        CollieException e = assertThrows(CollieException.class, () -> PipelinePartition.bounds(layers, stages, method));
        for (String w : words) {
            assertTrue(e.getMessage().contains(w), e.getMessage());
        }
    }

    @Test
    void clearErrors() {
        List<Layer> layers = tinyLlama(false).pipelineLayers();
        fails(layers, 2, "balanced", "unknown pipeline partition method 'balanced'", "type:REGEX");
        fails(layers, 2, "type:[decoder", "not a valid regular expression");
        fails(layers, 2, "type:", "names no layer type");
        fails(layers, 5, "type:decoder", "5 stages", "only 4 of the 7 layers match", "DecoderLayer");
        fails(layers, 2, "type:mamba", "only 0 of the 7 layers match");
        fails(layers, 8, "parameters", "7 pipeline layers into 8 stages");
        fails(layers, 8, "uniform", "7 pipeline layers into 8 stages");
        fails(layers, 0, "uniform", "at least 1");
        fails(layers, 2, null, "no pipeline partition method");
    }
}
